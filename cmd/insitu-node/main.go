// Command insitu-node runs one insitu storage node (package node) as a
// process: it serves the node API of docs/PROTOCOL.md over HTTP on -listen,
// stores objects under -dir, places names with the cluster map read from
// -map, and authenticates requests with the cluster secret read from
// -secret-file.
//
// Usage:
//
//	insitu-node -id n1 -listen 127.0.0.1:7001 -dir /var/lib/insitu/n1 \
//	    -map cluster.json -secret-file secret [-transforms wav,sha256] \
//	    [-log-level info] [-shutdown-timeout 30s]
//
// The map file holds a map in its JSON form (see locality.Map.MarshalJSON):
//
//	{"version":1,"nodes":[
//	  {"id":"n1","url":"http://127.0.0.1:7001","transform_url":"http://127.0.0.1:7101"},
//	  {"id":"n2","url":"http://127.0.0.1:7002"}]}
//
// A map that places names by their key alone (locality.ByKey) has
// "placement":"key" after its version; every node and client of a cluster
// must hold the same placement, and a field the node does not know makes it
// refuse the map. The node's own entry names the URL that its peers and
// clients use, which is usually the -listen address. A newer map reaches a
// running node through PUT /v1/map (see locality.Client.PushMap); the file
// is read once, at the start.
//
// The secret file holds the cluster secret: its bytes, without leading or
// trailing white space, at least 16 of them (say, the output of
// "openssl rand -hex 32"). The secret is never a flag, so that it does not
// show in ps; a file that other users may read, write or run is refused, and
// one that the file's group may read is accepted with a warning.
//
// Once the node serves, the command prints one line to standard output,
//
//	insitu-node n1 listening on http://127.0.0.1:7001
//
// so that a parent process can wait for it; the log (log/slog, text) goes to
// standard error. SIGTERM or SIGINT shuts the node down gracefully: new
// requests are answered 503 unavailable, running jobs are aborted, requests in
// flight finish, then the HTTP server stops; -shutdown-timeout bounds it all,
// after which what is left is cut off and the command exits 1. A second
// signal kills the process at once. The exit status is 0 after a clean
// shutdown, 1 when the node failed or its shutdown timed out, 2 for bad
// flags or files.
//
// Jobs: the command registers one in-process transform, "identity", which
// copies each input unchanged (insitu.Identity), for tests and demos, and
// the transforms of the catalog that -transforms names (a comma-separated
// list), each with its package's defaults and under the name it has here:
//
//	wav      ffmpeg.NewWAV(nil): any audio ffmpeg reads → PCM WAV; a job's
//	         args such as "-ac 1 -ar 16000" pick the channels and rate
//	         (needs ffmpeg on PATH: the command refuses to start without it)
//	md5, sha256, xxh64      hash.MD5, hash.SHA256, hash.XXH64: the hex digest
//	gzip, zstd              compress.Gzip, compress.Zstd: compress
//	gunzip, unzstd          compress.Gunzip, compress.Unzstd: decompress
//
// so that nodes started as processes (the scale-out benchmark's emulated
// hosts, for one) run the flagship job embedded, as in:
//
//	insitu-node -id n1 ... -transforms wav
//
// Other transforms run either in a transform server next to each node (the
// map's transform_url; a job's JobSpec.Server, see package transport), or
// embedded in a Go program of your own that calls node.New with
// Options.Transforms and serves Node.Handler: a command cannot load Go
// code.
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/locality"
	"github.com/insitu-data/insitu/node"
	"github.com/insitu-data/insitu/transform/compress"
	"github.com/insitu-data/insitu/transform/ffmpeg"
	"github.com/insitu-data/insitu/transform/hash"
)

// minSecret is the shortest secret the command accepts, in bytes.
const minSecret = 16

// Timeouts of the HTTP server, for what the node's handler does not bound
// itself (see node.Node.Handler).
const (
	readHeaderTimeout = 10 * time.Second
	idleTimeout       = 2 * time.Minute
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	os.Exit(run(ctx, stop, os.Args[1:], os.Stdout, os.Stderr))
}

// config is what the flags say.
type config struct {
	id, listen, dir, mapFile, secretFile string
	transforms                           []string // catalog names, -transforms
	level                                slog.Level
	shutdownTimeout                      time.Duration
}

// parseFlags parses args; a problem is reported on stderr and is exit
// status 2.
func parseFlags(args []string, stderr io.Writer) (config, bool) {
	var c config
	fs := flag.NewFlagSet("insitu-node", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.id, "id", "", "the node's ID, as the map names it (required)")
	fs.StringVar(&c.listen, "listen", "", "the address to serve on, such as 127.0.0.1:7001 (required)")
	fs.StringVar(&c.dir, "dir", "", "the store directory, created if missing (required)")
	fs.StringVar(&c.mapFile, "map", "", `the cluster map file, JSON: {"version":N,"nodes":[{"id","url","transform_url"}]} (required)`)
	fs.StringVar(&c.secretFile, "secret-file", "", "the file holding the cluster secret, not readable by others (required)")
	var transforms string
	fs.StringVar(&transforms, "transforms", "", "catalog transforms to register besides identity, comma-separated: "+strings.Join(catalogNames(), ", "))
	fs.TextVar(&c.level, "log-level", slog.LevelInfo, "the least level logged: debug, info, warn or error")
	fs.DurationVar(&c.shutdownTimeout, "shutdown-timeout", 30*time.Second, "how long a graceful shutdown may take")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: insitu-node -id ID -listen HOST:PORT -dir DIR -map FILE -secret-file FILE [flags]\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return c, false
	}
	var unknown []string
	for name := range strings.SplitSeq(transforms, ",") {
		name = strings.TrimSpace(name)
		switch {
		case name == "":
		case !slices.Contains(catalogNames(), name):
			unknown = append(unknown, name)
		case !slices.Contains(c.transforms, name):
			c.transforms = append(c.transforms, name)
		}
	}
	var missing []string
	for _, f := range []struct{ name, v string }{
		{"-id", c.id}, {"-listen", c.listen}, {"-dir", c.dir}, {"-map", c.mapFile}, {"-secret-file", c.secretFile},
	} {
		if f.v == "" {
			missing = append(missing, f.name)
		}
	}
	switch {
	case fs.NArg() > 0:
		fmt.Fprintf(stderr, "insitu-node: unexpected arguments: %q\n", fs.Args())
	case len(missing) > 0:
		fmt.Fprintf(stderr, "insitu-node: missing %s\n", strings.Join(missing, ", "))
	case len(unknown) > 0:
		fmt.Fprintf(stderr, "insitu-node: -transforms: unknown %q; the catalog has %s\n", unknown, strings.Join(catalogNames(), ", "))
	case c.shutdownTimeout <= 0:
		fmt.Fprintf(stderr, "insitu-node: -shutdown-timeout must be positive, not %v\n", c.shutdownTimeout)
	default:
		return c, true
	}
	fs.Usage()
	return c, false
}

// run runs the node until ctx ends (the signals, in main), then shuts it
// down; stop is called once ctx has ended, so that a second signal kills the
// process. It returns the exit status.
func run(ctx context.Context, stop func(), args []string, stdout, stderr io.Writer) int {
	c, ok := parseFlags(args, stderr)
	if !ok {
		return 2
	}
	nodeLog := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: c.level}))
	log := nodeLog.With("node", c.id) // the node adds the attribute to its own lines

	m, err := readMap(c.mapFile)
	if err != nil {
		log.Error("reading the map", "err", err)
		return 2
	}
	secret, err := readSecret(c.secretFile, log)
	if err != nil {
		log.Error("reading the secret", "err", err)
		return 2
	}

	transforms, err := catalog(c.transforms)
	if err != nil {
		log.Error("-transforms", "err", err)
		return 2
	}
	n, err := node.New(ctx, c.id, c.dir, m, &node.Options{
		Secret:     secret,
		Transforms: transforms,
		Logger:     nodeLog,
	})
	if err != nil {
		log.Error("starting the node", "err", err)
		return 1
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", c.listen)
	if err != nil {
		log.Error("listening", "err", err)
		shutdownNode(n, c.shutdownTimeout, log)
		return 1
	}
	checkOwnEntry(m, c.id, ln.Addr().String(), log)
	srv := &http.Server{
		Handler:           n.Handler(),
		ReadHeaderTimeout: readHeaderTimeout,
		IdleTimeout:       idleTimeout,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	addr := ln.Addr().String()
	log.Info("serving", "addr", addr, "dir", n.Dir(), "map_version", m.Version())
	fmt.Fprintf(stdout, "insitu-node %s listening on http://%s\n", c.id, addr)

	status := 0
	select {
	case <-ctx.Done():
		log.Info("shutting down", "timeout", c.shutdownTimeout)
	case err := <-served:
		log.Error("serving", "err", err)
		status = 1
	}
	stop()

	sctx, cancel := context.WithTimeout(context.Background(), c.shutdownTimeout)
	defer cancel()
	if err := n.Shutdown(sctx); err != nil {
		log.Error("shutting the node down", "err", err)
		status = 1
	}
	if err := srv.Shutdown(sctx); err != nil {
		log.Error("shutting the HTTP server down", "err", err)
		srv.Close()
		status = 1
	}
	if status == 0 {
		log.Info("shut down")
	}
	return status
}

// catalogNames are the names -transforms takes, in order.
func catalogNames() []string {
	return []string{"wav", "md5", "sha256", "xxh64", "gzip", "zstd", "gunzip", "unzstd"}
}

// catalog returns the transforms to register: identity and those named.
func catalog(names []string) (map[string]insitu.Transform, error) {
	ts := map[string]insitu.Transform{"identity": insitu.Identity}
	for _, name := range names {
		var t insitu.Transform
		switch name {
		case "wav":
			w, err := ffmpeg.NewWAV(nil)
			if err != nil {
				return nil, fmt.Errorf("wav: %w", err)
			}
			t = w
		case "md5":
			t = hash.MD5()
		case "sha256":
			t = hash.SHA256()
		case "xxh64":
			t = hash.XXH64()
		case "gzip":
			t = compress.Gzip(nil)
		case "zstd":
			t = compress.Zstd(nil)
		case "gunzip":
			t = compress.Gunzip(nil)
		case "unzstd":
			t = compress.Unzstd(nil)
		default:
			return nil, fmt.Errorf("unknown transform %q", name)
		}
		ts[name] = t
	}
	return ts, nil
}

// shutdownNode shuts n down after a failed start.
func shutdownNode(n *node.Node, timeout time.Duration, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := n.Shutdown(ctx); err != nil {
		log.Error("shutting the node down", "err", err)
	}
}

// readMap reads the map file.
func readMap(path string) (*locality.Map, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	m, err := locality.ParseMap(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return m, nil
}

// readSecret reads the secret file: its bytes without surrounding white
// space. A file that others may access is refused; one its group may read
// is accepted with a warning.
func readSecret(path string, log *slog.Logger) (locality.Secret, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o007 != 0 {
		return nil, fmt.Errorf("%s has mode %v: other users may access it; chmod 600 it", path, perm)
	} else if perm&0o070 != 0 {
		log.Warn("the secret file is accessible to its group; chmod 600 it", "file", path, "mode", perm.String())
	}
	// A secret is short: refuse to read a large file whole.
	b, err := io.ReadAll(io.LimitReader(f, 64<<10+1))
	if err != nil {
		return nil, err
	}
	if len(b) > 64<<10 {
		return nil, fmt.Errorf("%s is larger than 64 KiB: not a secret", path)
	}
	b = bytes.TrimSpace(b)
	if len(b) < minSecret {
		return nil, fmt.Errorf("%s holds %d bytes; a secret needs at least %d", path, len(b), minSecret)
	}
	return locality.Secret(b), nil
}

// checkOwnEntry warns when the map does not list the node, or lists it at
// another port than listen, the listener's address: a proxy in between may
// be meant, so it is not an error.
func checkOwnEntry(m *locality.Map, id, listen string, log *slog.Logger) {
	me, ok := m.Node(id)
	if !ok {
		log.Warn("the map does not list this node: it owns nothing until a map that does reaches it", "map_version", m.Version())
		return
	}
	u, err := url.Parse(me.URL)
	if err != nil {
		return // ParseMap checked it
	}
	_, lport, err := net.SplitHostPort(listen)
	if err != nil {
		return
	}
	if u.Port() != "" && u.Port() != lport {
		log.Warn("the map's URL for this node is not at the port it listens on", "url", me.URL, "listen", listen)
	}
}
