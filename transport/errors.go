package transport

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/internal/wire"
)

// wireError is the JSON form of an error on every transport: the body of
// an HTTP error response and the payload of a WebSocket ERROR frame.
type wireError struct {
	Code    insitu.Code `json:"code"`
	Message string      `json:"message"`
}

// maxErrorBody bounds how much of an HTTP error body is read.
const maxErrorBody = 64 << 10

// toWire turns err into its wire form. The message is the error's text
// without the object's name (the client knows it and adds it back) and
// without the trailing " (code)".
func toWire(err error) wireError {
	code := insitu.CodeOf(err)
	msg := err.Error()
	var e *insitu.Error
	if errors.As(err, &e) && error(e) == err {
		msg = e.Message()
	}
	if msg == "" {
		msg = code.String()
	}
	return wireError{Code: code, Message: msg}
}

// toError turns a wire error back into an *insitu.Error about name.
func (w wireError) toError(name insitu.Name) error {
	return &insitu.Error{Code: w.Code, Name: name, Msg: w.Message}
}

// writeError answers an HTTP request with err as a JSON error and the
// status of its code.
func writeError(w http.ResponseWriter, err error) {
	we := toWire(err)
	writeWireError(w, wire.Status(we.Code), we)
}

func writeWireError(w http.ResponseWriter, status int, we wireError) {
	b, _ := json.Marshal(we)
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

// readHTTPError turns an HTTP error response into an *insitu.Error about
// name: the JSON {"code","message"} when the body holds one, else a code
// guessed from the status and the start of the body as the message.
func readHTTPError(resp *http.Response, name insitu.Name) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	var we wireError
	if json.Unmarshal(b, &we) == nil && we.Message != "" {
		return we.toError(name)
	}
	msg := strings.TrimSpace(string(b))
	if len(msg) > 200 {
		msg = msg[:200] + "..."
	}
	if msg == "" {
		msg = resp.Status
	} else {
		msg = resp.Status + ": " + msg
	}
	return &insitu.Error{Code: wire.CodeOfStatus(resp.StatusCode), Name: name, Msg: msg}
}
