package locality

import (
	"context"
	"net/http"
	"net/url"
)

// Kinds of a named transform on a node ([TransformInfo].Kind).
const (
	// BuiltinTransform is an in-process transform given in the node's
	// options (node.Options.Transforms): listed, never registered or
	// removed over the API.
	BuiltinTransform = "builtin"
	// ServerTransform is a transform server registered by URL at run time.
	ServerTransform = "server"
)

// TransformSpec registers a transform server on a node under a name
// (PUT /v1/transforms/{name}).
type TransformSpec struct {
	// URL is the server's base URL. "" means the transform server next
	// to each node: the TransformURL of the node's own entry in its map,
	// so that one spec registers every node's own server.
	URL string `json:"url,omitempty"`
	// Mode is how the node reaches it: "ws" (the default), "hpush" or
	// "hpull".
	Mode string `json:"mode,omitempty"`
	// LocalFile sends the server the path of the input's file in the
	// node's store instead of its bytes, for a server that shares the
	// node's disk and allows the store's directory (its Roots).
	LocalFile bool `json:"local_file,omitempty"`
}

// TransformInfo describes a named transform on a node, as GET
// /v1/transforms lists it.
type TransformInfo struct {
	// Name is what jobs (JobSpec.Transform) and reads (?transform=) call
	// it.
	Name string `json:"name"`
	// Kind is [BuiltinTransform] or [ServerTransform].
	Kind string `json:"kind"`
	// The registration of a server ("" and false for a builtin).
	TransformSpec
	// Health is "ok" or why the node cannot reach the transform server
	// now, checked when the node answers.
	Health string `json:"health"`
}

// Transforms lists the named transforms of node, sorted by name, each
// with its health checked as the node answers.
func (c *Client) Transforms(ctx context.Context, node Node) ([]TransformInfo, error) {
	var out struct {
		Transforms []TransformInfo `json:"transforms"`
	}
	if err := c.Call(ctx, node, http.MethodGet, "/v1/transforms", nil, &out); err != nil {
		return nil, err
	}
	return out.Transforms, nil
}

// Transform describes the named transform name of node, its health
// checked now; an unknown name is NotFound.
func (c *Client) Transform(ctx context.Context, node Node, name string) (TransformInfo, error) {
	var info TransformInfo
	err := c.Call(ctx, node, http.MethodGet, "/v1/transforms/"+url.PathEscape(name), nil, &info)
	return info, err
}

// RegisterTransform registers the transform server of spec on node
// under name, replacing a server registered under it before; the node
// checks the server's health first. A bad name or spec, a URL the node's
// policy refuses, or the name of a builtin is InvalidArgument; a server
// that does not answer its health check is Unavailable, and nothing is
// registered.
func (c *Client) RegisterTransform(ctx context.Context, node Node, name string, spec TransformSpec) (TransformInfo, error) {
	var info TransformInfo
	err := c.Call(ctx, node, http.MethodPut, "/v1/transforms/"+url.PathEscape(name), spec, &info)
	return info, err
}

// RemoveTransform removes the transform server registered on node under
// name; jobs and reads using it finish with it. An unknown name is
// NotFound; a builtin is InvalidArgument.
func (c *Client) RemoveTransform(ctx context.Context, node Node, name string) error {
	return c.Call(ctx, node, http.MethodDelete, "/v1/transforms/"+url.PathEscape(name), nil, nil)
}
