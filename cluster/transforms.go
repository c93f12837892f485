package cluster

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/locality"
)

// RegisterTransform registers the transform server of spec under name on
// every node of c's map, at once (PUT /v1/transforms/{name}); with an
// empty spec.URL each node registers the transform server next to it
// (its map entry's TransformURL). It returns nil when every node took
// it, else the nodes' errors joined, each naming its node; the nodes that
// took it keep it. A node that joins later gets the cluster's transforms
// from its peers.
func RegisterTransform(ctx context.Context, c *locality.Client, name string, spec locality.TransformSpec) error {
	return eachNode(ctx, c, func(ctx context.Context, n locality.Node) error {
		_, err := c.RegisterTransform(ctx, n, name, spec)
		return err
	})
}

// RemoveTransform removes the transform server registered under name
// from every node of c's map. A node that does not have it is no error.
func RemoveTransform(ctx context.Context, c *locality.Client, name string) error {
	return eachNode(ctx, c, func(ctx context.Context, n locality.Node) error {
		err := c.RemoveTransform(ctx, n, name)
		if errors.Is(err, insitu.NotFound) {
			return nil
		}
		return err
	})
}

// eachNode calls f for every node of c's map at once and joins the
// errors, each prefixed with its node.
func eachNode(ctx context.Context, c *locality.Client, f func(context.Context, locality.Node) error) error {
	nodes := c.Map().Nodes()
	errs := make([]error, len(nodes))
	var wg sync.WaitGroup
	for i, n := range nodes {
		wg.Go(func() {
			if err := f(ctx, n); err != nil {
				errs[i] = fmt.Errorf("node %s: %w", n.ID, err)
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}
