package transporttest

import "github.com/insitu-data/insitu"

// Destination is a shorthand for an [insitu.Destination] of the PUT URL url
// with the bearer token token.
func Destination(url, token string) insitu.Destination {
	return insitu.Destination{URL: url, Token: token}
}
