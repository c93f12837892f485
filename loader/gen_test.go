package loader_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"iter"

	"github.com/insitu-data/insitu"
)

// genSource is a source of n generated objects, "train/sample-0000000.bin"
// and so on in bucket "data", each of size bytes derived from its name:
// a dataset of any size with no storage behind it.
type genSource struct {
	n, size int
}

func (g *genSource) key(i int) string { return fmt.Sprintf("train/sample-%07d.bin", i) }

// Objects lists the n names in order.
func (g *genSource) Objects(ctx context.Context) iter.Seq2[insitu.Object, error] {
	return func(yield func(insitu.Object, error) bool) {
		for i := range g.n {
			if i%1024 == 0 && ctx.Err() != nil {
				yield(insitu.Object{}, ctx.Err())
				return
			}
			if !yield(insitu.Object{Name: insitu.Name{Bucket: "data", Key: g.key(i)}, Size: int64(g.size)}, nil) {
				return
			}
		}
	}
}

// Open returns size bytes: the key, repeated.
func (g *genSource) Open(ctx context.Context, obj insitu.Object) (io.ReadCloser, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	b := bytes.Repeat([]byte(obj.Name.Key), g.size/len(obj.Name.Key)+1)[:g.size]
	return io.NopCloser(bytes.NewReader(b)), nil
}
