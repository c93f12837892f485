package transporttest

import "github.com/insitu-data/insitu/transport"

// Destination is a shorthand for a transport.Destination.
func Destination(url, token string) transport.Destination {
	return transport.Destination{URL: url, Token: token}
}
