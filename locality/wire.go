package locality

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/insitu-data/insitu"
)

// Headers of the storage-node API.
const (
	// HeaderMapVersion carries the version of the map the node answered
	// with, on every authenticated response (and on NotOwner errors).
	HeaderMapVersion = "Insitu-Map-Version"
	// HeaderErrorCode carries the error code of a failed request, so that a
	// HEAD request, which has no body, still gets it.
	HeaderErrorCode = "Insitu-Error-Code"
	// HeaderChecksum carries the XXH64 of a stored object as 16 lowercase
	// hex digits (the response to a PUT).
	HeaderChecksum = "Insitu-Checksum"
	// HeaderOwner carries the ID of the node that answered for an object.
	HeaderOwner = "Insitu-Owner"
)

// ErrorBody is the JSON body of every error response of the storage-node
// API, such as {"code":"not_found","message":"no such object"}.
type ErrorBody struct {
	Code    insitu.Code `json:"code"`
	Message string      `json:"message"`
	// MapVersion is the version of the node's map, set on NotOwner errors.
	MapVersion int64 `json:"map_version,omitempty"`
}

// HTTPStatus returns the HTTP status that carries the code.
func HTTPStatus(c insitu.Code) int {
	switch c {
	case insitu.InvalidArgument:
		return http.StatusBadRequest
	case insitu.NotFound:
		return http.StatusNotFound
	case insitu.NotOwner:
		return http.StatusConflict
	case insitu.Unavailable:
		return http.StatusServiceUnavailable
	case insitu.Canceled:
		return StatusClientClosed
	case insitu.DeadlineExceeded:
		return http.StatusGatewayTimeout
	case insitu.PermissionDenied:
		return http.StatusForbidden
	case insitu.TooLarge:
		return http.StatusRequestEntityTooLarge
	}
	return http.StatusInternalServerError
}

// CodeOfStatus guesses the code of an HTTP error response that carries
// none (an answer from a proxy, say); it is the inverse of [HTTPStatus]
// where that is one to one.
func CodeOfStatus(status int) insitu.Code {
	switch status {
	case http.StatusBadRequest, http.StatusMethodNotAllowed, http.StatusLengthRequired:
		return insitu.InvalidArgument
	case http.StatusNotFound:
		return insitu.NotFound
	case http.StatusConflict, http.StatusMisdirectedRequest:
		return insitu.NotOwner
	case http.StatusUnauthorized, http.StatusForbidden:
		return insitu.PermissionDenied
	case http.StatusRequestEntityTooLarge:
		return insitu.TooLarge
	case StatusClientClosed:
		return insitu.Canceled
	case http.StatusRequestTimeout, http.StatusGatewayTimeout:
		return insitu.DeadlineExceeded
	case http.StatusInternalServerError:
		return insitu.Internal
	}
	if status >= 500 {
		return insitu.Unavailable
	}
	return insitu.Unknown
}

// StatusClientClosed is the status (nginx's) that carries [insitu.Canceled]:
// the client canceled the request.
const StatusClientClosed = 499

// ErrorMessage returns the message of err for an [ErrorBody]: the text of
// err without the object's name and the code in parentheses, which the
// body and the client carry separately.
func ErrorMessage(err error) string {
	if e, ok := err.(*insitu.Error); ok {
		return e.Message()
	}
	return err.Error()
}

// maxErrorBody bounds how much of an error response the client reads.
const maxErrorBody = 64 << 10

// responseError turns an error response of node into an *insitu.Error
// about name, and returns the node's map version when it sent one (0
// otherwise). It reads and closes the body.
func responseError(resp *http.Response, node string, name insitu.Name) (int64, error) {
	defer resp.Body.Close()
	var body ErrorBody
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	if len(raw) > 0 && json.Unmarshal(raw, &body) == nil && body.Code != insitu.Unknown {
		// the node said what went wrong
	} else {
		body = ErrorBody{Code: insitu.ParseCode(resp.Header.Get(HeaderErrorCode))}
		if body.Code == insitu.Unknown {
			body.Code = CodeOfStatus(resp.StatusCode)
		}
		body.Message = strings.TrimSpace(string(raw))
		if body.Message == "" || resp.Request != nil && resp.Request.Method == http.MethodHead {
			body.Message = resp.Status
		}
	}
	version := body.MapVersion
	if v, err := strconv.ParseInt(resp.Header.Get(HeaderMapVersion), 10, 64); err == nil && version == 0 {
		version = v
	}
	msg := fmt.Sprintf("node %s: %s", node, body.Message)
	return version, &insitu.Error{Code: body.Code, Name: name, Msg: msg}
}
