package locality

import (
	"net/http"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/internal/wire"
)

// maxErrorBody bounds how much of a small JSON reply the client reads.
const maxErrorBody = wire.MaxErrorBody

// responseError turns an error response of node into an *insitu.Error
// about name, and returns the node's map version when it sent one (0
// otherwise). It reads and closes the body.
func responseError(resp *http.Response, node string, name insitu.Name) (int64, error) {
	b, err := wire.DecodeError(resp, name, "node "+node)
	return b.MapVersion, err
}
