package locality_test

import (
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/locality"
)

// TestPutToNodeThatNeverReads: a PUT to a node that accepts the
// connection and never reads fails with Unavailable once a write makes no
// progress for WriteTimeout, even with a context that never ends.
func TestPutToNodeThatNeverReads(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan struct{})
	defer close(done)
	go func() {
		var held []net.Conn // never read
		defer func() {
			for _, c := range held {
				c.Close()
			}
		}()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			held = append(held, c)
			select {
			case <-done:
				return
			default:
			}
		}
	}()
	m, _ := locality.NewMap(1, locality.Node{ID: "n1", URL: "http://" + ln.Addr().String()})
	c, err := locality.NewClient(m, &locality.ClientOptions{WriteTimeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const size = 1 << 30 // far beyond any socket buffer
	_, err = c.Put(t.Context(), insitu.Name{Bucket: "b", Key: "k"}, io.LimitReader(zeros{}, size), size)
	if !errors.Is(err, insitu.Unavailable) {
		t.Fatalf("Put to a node that never reads: %v, want Unavailable", err)
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// TestGetFromNodeThatNeverAnswers: a request to a node that reads it and
// never answers fails with Unavailable once no byte of the answer arrives
// for ReadTimeout, even with a context that never ends.
func TestGetFromNodeThatNeverAnswers(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				io.Copy(io.Discard, c) // reads everything, answers nothing
			}()
		}
	}()
	m, _ := locality.NewMap(1, locality.Node{ID: "n1", URL: "http://" + ln.Addr().String()})
	c, err := locality.NewClient(m, &locality.ClientOptions{ReadTimeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Head(t.Context(), insitu.Name{Bucket: "b", Key: "k"}); !errors.Is(err, insitu.Unavailable) {
		t.Fatalf("Head from a node that never answers: %v, want Unavailable", err)
	}
}
