package locality

import (
	"context"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/cespare/xxhash/v2"
	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/internal/putcheck"
	"github.com/insitu-data/insitu/internal/wire"
)

// GetTransformed reads name's object through a chain of transforms that
// its owner runs next to the data (GET ?transform=a,b&args=): chain
// names the transforms, in order, as the nodes know them, and args reach
// every stage. Only the transformed bytes cross the network.
//
// The Object has the output's Size when the owner knew it before it
// answered (a small output), else -1, and the object's owner. The reader verifies what it reads: it ends
// with io.EOF only after the whole output arrived and its XXH64 matched
// the checksum the owner sent after it; a chain that fails after the
// first bytes ends the reader with the chain's error and code; a body
// cut short, or one whose checksum differs, with an Unavailable error.
// A chain that fails before the first bytes (an unknown transform is
// NotFound, an input the transform rejects InvalidArgument) is the error
// of this call. The caller closes the reader, which stops the owner's
// chain when it is still running.
func (c *Client) GetTransformed(ctx context.Context, name insitu.Name, chain []string, args string) (io.ReadCloser, insitu.Object, error) {
	if len(chain) == 0 {
		return nil, insitu.Object{}, insitu.Errorf(insitu.InvalidArgument, "GetTransformed: no transform named; use Get")
	}
	for _, s := range chain {
		if s == "" || strings.Contains(s, ",") {
			return nil, insitu.Object{}, insitu.Errorf(insitu.InvalidArgument, "GetTransformed: transform name %q", s)
		}
	}
	q := url.Values{"transform": {strings.Join(chain, ",")}}
	if args != "" {
		q.Set("args", args)
	}
	var (
		rc  io.ReadCloser
		obj insitu.Object
	)
	err := c.withOwner(ctx, name, func(owner Node, _ bool) (*notOwner, error) {
		if err := checkName(name); err != nil {
			return nil, err
		}
		req, err := c.newRequest(ctx, http.MethodGet, ObjectURL(owner, name)+"?"+q.Encode(), nil)
		if err != nil {
			return nil, err
		}
		resp, err := c.do(ctx, req, owner.ID, name)
		if err != nil {
			return nil, err
		}
		if resp.StatusCode/100 != 2 {
			_, no, err := c.failed(resp, owner, name)
			return no, err
		}
		obj = objectOf(resp, owner, name)
		rc = &verifiedBody{getBody: getBody{ctx: ctx, rc: resp.Body, name: name, node: owner.ID}, resp: resp, sum: xxhash.New()}
		return nil, nil
	})
	if err != nil {
		return nil, insitu.Object{}, err
	}
	return rc, obj, nil
}

// verifiedBody reads a transformed GET's body and checks its trailers at
// the end.
type verifiedBody struct {
	getBody
	resp *http.Response
	sum  hash.Hash64
	err  error // the verdict, once the body ended
}

func (v *verifiedBody) Read(p []byte) (int, error) {
	if v.err != nil {
		return 0, v.err
	}
	n, err := v.getBody.Read(p)
	v.sum.Write(p[:n])
	switch {
	case err == io.EOF:
		v.err = v.verdict()
		return n, v.err
	case err != nil && errors.Is(err, io.ErrUnexpectedEOF):
		v.err = &insitu.Error{Code: insitu.Unavailable, Name: v.name, Msg: "node " + v.node + ": the transformed object was cut short", Err: err}
		return n, v.err
	case err != nil:
		v.err = err
	}
	return n, err
}

// verdict tells, from the trailers, whether the body that ended is the
// whole output.
func (v *verifiedBody) verdict() error {
	tr := v.resp.Trailer
	if code := tr.Get(wire.ErrorCode); code != "" {
		msg, _ := url.PathUnescape(tr.Get(wire.ErrorMessage))
		return &insitu.Error{Code: insitu.ParseCode(code), Name: v.name, Msg: "node " + v.node + ": " + msg}
	}
	want := tr.Get(wire.Checksum)
	if want == "" && v.resp.ContentLength >= 0 {
		// An output the owner sent whole, with its length: the checksum
		// is a header.
		want = v.resp.Header.Get(wire.Checksum)
	}
	if want == "" {
		return &insitu.Error{Code: insitu.Unavailable, Name: v.name, Msg: "node " + v.node + ": the transformed object ended without its checksum: it was cut short"}
	}
	if got := putcheck.Hex(v.sum.Sum64()); got != want {
		return &insitu.Error{Code: insitu.Unavailable, Name: v.name, Msg: fmt.Sprintf("node %s: the transformed object's XXH64 is %s, the owner sent %s", v.node, got, want)}
	}
	return io.EOF
}
