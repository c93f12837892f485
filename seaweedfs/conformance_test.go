package seaweedfs_test

import (
	"testing"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/seaweedfs"
	"github.com/insitu-data/insitu/sink/sinktest"
	"github.com/insitu-data/insitu/source/sourcetest"
)

func TestSourceConformance(t *testing.T) {
	t.Parallel()
	c := shared(t)
	sourcetest.Run(t, sourcetest.Harness{
		Bucket: "conformance",
		MakeSource: func(t *testing.T, objects map[string][]byte) insitu.Source {
			client := newClient(t, c, &seaweedfs.Options{})
			dir := client.Root() + "/conformance"
			filerMkdir(t, c, dir)
			for key, b := range objects {
				filerPut(t, c, dir+"/"+key, b, "")
			}
			src, err := seaweedfs.NewSource(client, "conformance", nil)
			if err != nil {
				t.Fatal(err)
			}
			return src
		},
	})
}

func TestSinkConformance(t *testing.T) {
	t.Parallel()
	c := shared(t)
	sinktest.Run(t, sinktest.Harness{
		Bucket: "conformance",
		MakeSink: func(t *testing.T) insitu.Sink {
			s, err := seaweedfs.NewSink(newClient(t, c, nil), nil)
			if err != nil {
				t.Fatal(err)
			}
			return s
		},
		Read: func(t *testing.T, s insitu.Sink, name insitu.Name) ([]byte, error) {
			p, err := s.(*seaweedfs.Sink).Client().Path(name)
			if err != nil {
				t.Fatal(err)
			}
			return filerRead(t, c, p)
		},
	})
}
