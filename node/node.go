// Package node is the insitu storage node: an [http.Handler] that stores
// objects in a local directory and serves the node API of
// docs/PROTOCOL.md, for a Go service to embed (see [New] and
// [Node.Handler]). Package nodetest starts whole clusters of nodes in one
// process, on loopback with temporary directories, for tests and examples.
//
// A node stores the object bucket/key in the file <Dir>/<bucket>/<key>,
// written atomically (a temporary file in the same directory, fsync,
// rename), so other code on the machine, such as a job reading its inputs
// from disk, sees whole objects only. Every file access goes through an
// [os.Root] on Dir, and names are validated first, so no request can touch
// a file outside the store. A process that crashes while writing leaves a
// temporary file behind; a node removes them all when it starts (see
// [New]).
//
// A node owns the names that its map (see [locality.Map]) places on it, and
// refuses to store, serve or delete any other name with NotOwner (HTTP 409)
// and its map version, so a client with a stale map refreshes it and
// retries.
package node

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"io/fs"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/internal/atomicfile"
	"github.com/insitu-data/insitu/internal/fserr"
	"github.com/insitu-data/insitu/internal/putcheck"
	"github.com/insitu-data/insitu/locality"
	"github.com/insitu-data/insitu/transport"
)

// DefaultMaxObjectSize is the largest object a node stores when
// Options.MaxObjectSize is 0: 5 GiB, the largest single PUT of S3.
const DefaultMaxObjectSize int64 = 5 << 30

// Options configure a [Node]. A nil *Options means every default; so does
// the zero value of each field.
type Options struct {
	// Secret authenticates requests: every endpoint but GET /v1/health
	// requires a token made with it that allows the request (see
	// [locality.Secret.Verify]). The node authenticates to its transform
	// server with [locality.Secret.TransformSecret] of its ID (the secret
	// the operator gives that server) and hands it only object tokens. Default: the zero Secret,
	// which turns authentication off (the node logs a warning).
	Secret locality.Secret
	// MaxObjectSize is the largest object, in bytes, the node stores; a
	// larger upload is refused with TooLarge (HTTP 413). Default (0):
	// DefaultMaxObjectSize.
	MaxObjectSize int64
	// Transforms are the in-process transforms ("builtins") that jobs
	// (POST /v1/jobs) and reads (GET ?transform=) may name, beside the
	// transform servers registered at run time (PUT /v1/transforms/{name},
	// [Node.RegisterTransform]). Default: none.
	Transforms map[string]insitu.Transform
	// AllowTransformURL says whether a transform server may be registered
	// at a URL. Default: [transport.LoopbackOnly], servers on this machine
	// only.
	AllowTransformURL func(*url.URL) bool
	// DialTimeout bounds the dial of a transform server when a job that
	// runs through it starts (see [Node.StartJob]), on top of the start's
	// context, which for a job started over HTTP is the request's. Default
	// (0): DefaultDialTimeout.
	DialTimeout time.Duration
	// OutputRecords is how many output names the node remembers, over the
	// jobs that put outputs to it, to refuse a second input of a job renamed
	// to an output name that another input of the job has (see
	// [Node.StartJob]); each takes about 100 bytes. Past it the node
	// forgets the jobs least recently put to, and a job that alone has more
	// outputs on the node is not checked for its later ones. Default (0):
	// DefaultOutputRecords.
	OutputRecords int
	// MaxJobs is how many jobs the node runs at once; one more is refused
	// with Unavailable (HTTP 503), which a client retries later. Default
	// (0): DefaultMaxJobs.
	MaxJobs int
	// MaxTransformedReads is how many reads through transforms (GET
	// ?transform=, and the transformed objects of batch GETs) the node
	// runs at once; one more waits up to 5 seconds for a slot, then is
	// refused with Unavailable (HTTP 503). Default (0):
	// 4 × runtime.GOMAXPROCS(0).
	MaxTransformedReads int
	// ProgressTimeout and ProgressBytes bound how slowly a request may
	// move over the network, so that a client that trickles its body, or
	// that never reads the response, cannot hold a connection and a
	// goroutine of the node for ever: every ProgressBytes of a request's
	// body must arrive, and every ProgressBytes of a response must be
	// taken by the client, within ProgressTimeout, or the node cuts the
	// request off (the body's reads fail with DeadlineExceeded, a response
	// is cut short, and the connection is closed) and logs it. The clock
	// starts when the node starts reading a body and again after every
	// ProgressBytes of it, and before every write of a response (at most
	// ProgressBytes each), so what the node does before it reads or writes
	// (a job status's wait) is not counted. The node sets the
	// connection's read and write deadlines through
	// [http.ResponseController] (net/http's servers support it), which
	// replaces the server's ReadTimeout and WriteTimeout, if any, for those
	// reads and writes; the server's ReadHeaderTimeout and IdleTimeout
	// still bound the rest (see [Node.Handler]). Default (0):
	// DefaultProgressTimeout.
	ProgressTimeout time.Duration
	// ProgressBytes: see ProgressTimeout. Default (0):
	// DefaultProgressBytes, which with the default ProgressTimeout asks
	// for about 4 KiB/s.
	ProgressBytes int
	// Logger receives the node's log lines: refused, failed and cut off
	// requests, aborted uploads. No line holds the secret or a token.
	// Default: no logging.
	Logger *slog.Logger
}

// DefaultDialTimeout is Options.DialTimeout's default.
const DefaultDialTimeout = 10 * time.Second

// DefaultProgressTimeout is Options.ProgressTimeout's default.
const DefaultProgressTimeout = time.Minute

// DefaultProgressBytes is Options.ProgressBytes's default: 256 KiB.
const DefaultProgressBytes = 256 << 10

// Node is a storage node. It is safe for concurrent use. Its methods that
// take a name (Put, Stat, Open, Delete) work on the local store directly,
// without HTTP, with the same checks as the API: they refuse invalid names
// and names the node does not own. A node runs until [Node.Shutdown]; after
// it, those methods fail with [insitu.Unavailable].
type Node struct {
	id       string
	dir      string
	root     *os.Root
	files    *atomicfile.Dir // root held open for creates and job inputs
	m        atomic.Pointer[locality.Map]
	secret   locality.Secret
	maxSize  int64
	log      *slog.Logger
	mux      http.Handler // routeMux, behind the shutdown check
	routeMux *http.ServeMux
	bufs     sync.Pool // *[]byte of copyBufSize
	small    sync.Pool // *[]byte of smallPutSize, for the puts that fit

	readSlots         chan struct{}               // one per transformed read in flight
	transforms        map[string]insitu.Transform // the builtins
	reg               registry                    // the servers registered at run time
	allowTransformURL func(*url.URL) bool
	jobs              jobTable
	dialTimeout       time.Duration
	progress          progressBound
	outputs           outputTable
	hc                *http.Client // the jobs' puts to other nodes
	rebalancing       atomic.Bool  // a Rebalance runs

	// dirLocks keep the removal of the directories a Delete leaves empty
	// from removing a directory that a Put has made and not yet filled
	// with its temporary file (see dirLock).
	dirLocks [dirLockStripes]sync.RWMutex
	dirSeed  maphash.Seed

	life    tracker
	bg      context.Context // the node's background work; Shutdown cancels it
	stopBg  context.CancelFunc
	release sync.Once // of what Shutdown releases
	rootErr error     // the store's Close error, set in release
}

// copyBufSize is the size of the buffers that uploads are copied through.
const copyBufSize = 256 << 10

// smallPutSize is the size of the buffers of the uploads of a known size
// that fit: a node taking many small objects at once holds as many of
// these, not of copyBufSize.
const smallPutSize = 32 << 10

// dirLockStripes is the number of locks that Put and Delete share to keep
// a Delete's cleanup of empty directories from racing with a Put's making
// of them.
const dirLockStripes = 64

// New returns the node id over the store directory dir, which is created
// (mode 0o755) if missing, with m as its first cluster map ([Node.SetMap]
// installs newer ones; the node need not be in m, and then owns nothing).
// Shut it down with [Node.Shutdown] when done.
//
// The node owns its store directory: before New returns (so before the
// node serves anything), it removes every temporary file under it (names
// starting with ".insitu-tmp-"), which only a process that crashed while
// writing an object can have left, and logs how many it removed. This
// walks the whole store; ctx bounds it (a canceled ctx fails New with its
// error), and the node does not keep ctx. A failure of that sweep fails New.
func New(ctx context.Context, id, dir string, m *locality.Map, opts *Options) (*Node, error) {
	if opts == nil {
		opts = &Options{}
	}
	switch {
	case id == "":
		return nil, insitu.Errorf(insitu.InvalidArgument, "node: empty ID")
	case dir == "":
		return nil, insitu.Errorf(insitu.InvalidArgument, "node %s: empty store directory", id)
	case m == nil || m.Len() == 0:
		return nil, insitu.Errorf(insitu.InvalidArgument, "node %s: a map with at least one node is required", id)
	case opts.MaxObjectSize < 0:
		return nil, insitu.Errorf(insitu.InvalidArgument, "node %s: negative MaxObjectSize %d", id, opts.MaxObjectSize)
	case opts.DialTimeout < 0:
		return nil, insitu.Errorf(insitu.InvalidArgument, "node %s: negative DialTimeout %v", id, opts.DialTimeout)
	case opts.OutputRecords < 0:
		return nil, insitu.Errorf(insitu.InvalidArgument, "node %s: negative OutputRecords %d", id, opts.OutputRecords)
	case opts.MaxJobs < 0:
		return nil, insitu.Errorf(insitu.InvalidArgument, "node %s: negative MaxJobs %d", id, opts.MaxJobs)
	case opts.ProgressTimeout < 0:
		return nil, insitu.Errorf(insitu.InvalidArgument, "node %s: negative ProgressTimeout %v", id, opts.ProgressTimeout)
	case opts.ProgressBytes < 0:
		return nil, insitu.Errorf(insitu.InvalidArgument, "node %s: negative ProgressBytes %d", id, opts.ProgressBytes)
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, insitu.Errorf(insitu.InvalidArgument, "node %s: store directory: %w", id, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, &insitu.Error{Code: fserr.Code(err), Msg: "node " + id + ": store directory", Err: err}
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, &insitu.Error{Code: fserr.Code(err), Msg: "node " + id + ": store directory", Err: err}
	}
	n := &Node{
		id:      id,
		dir:     dir,
		root:    root,
		files:   atomicfile.NewDir(root),
		secret:  opts.Secret,
		maxSize: opts.MaxObjectSize,
		log:     opts.Logger,

		dialTimeout: opts.DialTimeout,
		progress:    progressBound{timeout: opts.ProgressTimeout, bytes: int64(opts.ProgressBytes)},
		outputs:     outputTable{limit: opts.OutputRecords},
		dirSeed:     maphash.MakeSeed(),
	}
	if n.maxSize == 0 {
		n.maxSize = DefaultMaxObjectSize
	}
	if n.dialTimeout == 0 {
		n.dialTimeout = DefaultDialTimeout
	}
	if n.progress.timeout == 0 {
		n.progress.timeout = DefaultProgressTimeout
	}
	if n.progress.bytes == 0 {
		n.progress.bytes = DefaultProgressBytes
	}
	if n.outputs.limit == 0 {
		n.outputs.limit = DefaultOutputRecords
	}
	n.hc = newJobHTTPClient(n.dialTimeout, n.progress.timeout)
	if n.log == nil {
		n.log = slog.New(slog.DiscardHandler)
	}
	n.log = n.log.With("node", n.id)
	n.bufs.New = func() any { b := make([]byte, copyBufSize); return &b }
	n.small.New = func() any { b := make([]byte, smallPutSize); return &b }
	n.transforms = maps.Clone(opts.Transforms)
	if k := opts.MaxTransformedReads; k > 0 {
		n.readSlots = make(chan struct{}, k)
	} else {
		n.readSlots = make(chan struct{}, 4*runtime.GOMAXPROCS(0))
	}
	n.bg, n.stopBg = context.WithCancel(context.Background())
	n.allowTransformURL = opts.AllowTransformURL
	if n.allowTransformURL == nil {
		n.allowTransformURL = transport.LoopbackOnly
	}
	n.jobs.init()
	n.jobs.limit = opts.MaxJobs
	n.m.Store(m)
	if len(n.secret) == 0 {
		n.log.Warn("authentication is off: the node has no secret")
	}
	removed, err := atomicfile.Sweep(ctx, root, 0)
	if removed > 0 {
		n.log.Info("removed stale temporary files from the store", "count", removed, "dir", dir)
	}
	if err != nil {
		n.files.Close()
		root.Close()
		n.stopBg()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, &insitu.Error{Code: fserr.Code(err), Msg: "node " + id + ": removing stale temporary files from the store " + dir, Err: err}
	}
	n.routes()
	n.adoptTransforms(m) // a node that (re)joins gets the cluster's transform servers
	return n, nil
}

// ID returns the node's ID.
func (n *Node) ID() string { return n.id }

// Dir returns the absolute path of the store directory.
func (n *Node) Dir() string { return n.dir }

// Map returns the node's current map.
func (n *Node) Map() *locality.Map { return n.m.Load() }

// SetMap installs m when it succeeds the node's map (newer, by at most
// locality.MaxMapStep versions: see [locality.Map.Succeeds]), and reports
// whether it did.
func (n *Node) SetMap(m *locality.Map) bool {
	for {
		cur := n.m.Load()
		if m == nil || m.Len() == 0 || m.Succeeds(cur) != nil {
			return false
		}
		if n.m.CompareAndSwap(cur, m) {
			n.log.Info("new map", "version", m.Version(), "nodes", m.Len(), "placement", string(m.Placement()))
			n.adoptTransforms(m)
			return true
		}
	}
}

// Path returns the file that holds name's object (whether or not it
// exists), or "" for a name that is invalid or has no bucket.
func (n *Node) Path(name insitu.Name) string {
	if checkName(name) != nil {
		return ""
	}
	return filepath.Join(n.dir, name.Bucket, filepath.FromSlash(name.Key))
}

// checkName refuses the names a node cannot store: invalid names, names
// without a bucket, and keys with a segment reserved for temporary files.
func checkName(name insitu.Name) error {
	if name.Bucket == "" {
		return &insitu.Error{Code: insitu.InvalidArgument, Name: name, Msg: "empty bucket"}
	}
	if err := name.Validate(); err != nil {
		return err
	}
	for seg := range strings.SplitSeq(name.Key, "/") {
		if atomicfile.IsTemp(seg) {
			return &insitu.Error{Code: insitu.InvalidArgument, Name: name, Msg: fmt.Sprintf("key segment %q starts with %q, which is reserved for temporary files", seg, atomicfile.TempPrefix)}
		}
	}
	return nil
}

// own checks name and that the node owns it under m.
func (n *Node) own(m *locality.Map, name insitu.Name) error {
	if err := checkName(name); err != nil {
		return err
	}
	if !m.Owns(n.id, name) {
		return &insitu.Error{Code: insitu.NotOwner, Name: name,
			Msg: fmt.Sprintf("node %s does not own it under map v%d (its owner is %s)", n.id, m.Version(), m.Owner(name).ID)}
	}
	return nil
}

// relPath returns name's file relative to the store, slash-separated.
func relPath(name insitu.Name) string { return name.Bucket + "/" + name.Key }

// Put stores r under name, atomically: the object appears whole once r
// returns io.EOF, and nothing is left if r fails, ctx ends, the object
// grows over the node's MaxObjectSize (TooLarge) or differs from a known
// size (InvalidArgument). A nil r is InvalidArgument. It returns the size,
// the XXH64 checksum and the node's ID. It implements [insitu.Sink] for
// the local store.
func (n *Node) Put(ctx context.Context, name insitu.Name, r io.Reader, size int64) (insitu.PutResult, error) {
	if err := n.enter(); err != nil {
		return insitu.PutResult{}, err
	}
	defer n.leave()
	return n.put(ctx, n.Map(), name, r, size, claim{})
}

// PutOrigin is [Node.Put], with origin recorded with the object (see
// [insitu.OriginSink]): in the extended attribute user.insitu.origin of
// the object's file, set on the temporary file before the rename, so that
// the bytes and their origin appear together and a Put that replaces the
// object leaves none. [Node.Stat] reads it back. A store on a file system
// that keeps no extended attributes records nothing; nor does an origin
// over insitu.MaxOriginLen.
func (n *Node) PutOrigin(ctx context.Context, name insitu.Name, r io.Reader, size int64, origin insitu.Origin) (insitu.PutResult, error) {
	if err := n.enter(); err != nil {
		return insitu.PutResult{}, err
	}
	defer n.leave()
	return n.putOrigin(ctx, n.Map(), name, r, size, claim{}, originText(origin))
}

// originText returns the text of origin that a node records, or "" when
// it is over insitu.MaxOriginLen.
func originText(origin insitu.Origin) string {
	if s := origin.String(); len(s) <= insitu.MaxOriginLen {
		return s
	}
	return ""
}

// put stores an object; c, when set, is the job input the object is made
// from (see claimOutput).
func (n *Node) put(ctx context.Context, m *locality.Map, name insitu.Name, r io.Reader, size int64, c claim) (insitu.PutResult, error) {
	return n.putOrigin(ctx, m, name, r, size, c, "")
}

// putOrigin is put, recording the text of the object's origin with it
// when origin is not "".
func (n *Node) putOrigin(ctx context.Context, m *locality.Map, name insitu.Name, r io.Reader, size int64, c claim, origin string) (insitu.PutResult, error) {
	return n.putFile(ctx, m, name, r, size, c, origin, false)
}

// putFile is putOrigin; with createOnly, it stores the object only if
// nothing is under its name when it commits (else Exists, and nothing
// changes).
func (n *Node) putFile(ctx context.Context, m *locality.Map, name insitu.Name, r io.Reader, size int64, c claim, origin string, createOnly bool) (insitu.PutResult, error) {
	if err := n.own(m, name); err != nil {
		return insitu.PutResult{}, err
	}
	in, err := putcheck.New(ctx, name, r, size, n.maxSize)
	if err != nil {
		return insitu.PutResult{}, err
	}
	if err := n.claimOutput(c, name); err != nil {
		return insitu.PutResult{}, err
	}
	f, err := n.create(name)
	if err != nil {
		return insitu.PutResult{}, n.fileError(name, err, true)
	}
	defer f.Abort()
	pool := &n.bufs
	if size >= 0 && size < smallPutSize {
		pool = &n.small // its one read of the body meets the EOF
	}
	bp := pool.Get().(*[]byte)
	defer pool.Put(bp)
	buf := *bp
	for {
		k, rerr := in.Read(buf)
		if k > 0 {
			if _, err := f.Write(buf[:k]); err != nil {
				return insitu.PutResult{}, n.fileError(name, err, true)
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return insitu.PutResult{}, rerr
		}
	}
	if err := ctx.Err(); err != nil {
		return insitu.PutResult{}, err
	}
	if origin != "" {
		if err := f.SetAttr(atomicfile.OriginAttr, atomicfile.EncodeOrigin(origin, name.Key)); err != nil && !atomicfile.AttrUnsupported(err) {
			return insitu.PutResult{}, n.fileError(name, err, true)
		}
	}
	commit := f.Commit
	if createOnly {
		commit = f.CommitNew
	}
	if err := commit(); err != nil {
		if createOnly && errors.Is(err, fs.ErrExist) {
			if fi, lerr := n.root.Lstat(filepath.FromSlash(relPath(name))); lerr == nil && fi.IsDir() {
				return insitu.PutResult{}, &insitu.Error{Code: insitu.InvalidArgument, Name: name,
					Msg: "the name is a directory of other objects' keys in the store"}
			}
			return insitu.PutResult{}, errExists(name)
		}
		return insitu.PutResult{}, n.fileError(name, err, true)
	}
	res := in.Result()
	res.Owner = n.id
	return res, nil
}

// errExists is the error of a create-only put that finds the object.
func errExists(name insitu.Name) error {
	return &insitu.Error{Code: insitu.Exists, Name: name, Msg: "the object exists, and the put may only create it (If-None-Match: *)"}
}

// Stat describes name's object: name, size, owner (this node), Path (the
// local file), Version (its size and modification time) and Origin (the
// origin recorded by [Node.PutOrigin] or a PUT with Insitu-Origin, ""
// for none). A missing object is NotFound.
func (n *Node) Stat(ctx context.Context, name insitu.Name) (insitu.Object, error) {
	if err := n.enter(); err != nil {
		return insitu.Object{}, err
	}
	defer n.leave()
	obj, fi, err := n.statFile(ctx, n.Map(), name)
	if err != nil {
		return insitu.Object{}, err
	}
	// An origin that cannot be read, or is not one, is none: a run that
	// skips unchanged outputs makes the object again.
	origin, _ := atomicfile.ReadAttr(n.root, relPath(name), fi, atomicfile.OriginAttr)
	obj.Origin = validOrigin(origin, name.Key)
	return obj, nil
}

// validOrigin returns the text of the origin that value, the attribute
// atomicfile.OriginAttr of the file of key's object, records, else "".
func validOrigin(value, key string) string {
	return atomicfile.DecodeOrigin(value, key)
}

// stat describes name's object without its Origin.
func (n *Node) stat(ctx context.Context, m *locality.Map, name insitu.Name) (insitu.Object, error) {
	obj, _, err := n.statFile(ctx, m, name)
	return obj, err
}

// statFile is stat, also returning the file's description.
func (n *Node) statFile(ctx context.Context, m *locality.Map, name insitu.Name) (insitu.Object, fs.FileInfo, error) {
	if err := n.own(m, name); err != nil {
		return insitu.Object{}, nil, err
	}
	if err := ctx.Err(); err != nil {
		return insitu.Object{}, nil, err
	}
	fi, err := n.root.Lstat(filepath.FromSlash(relPath(name)))
	if err != nil {
		return insitu.Object{}, nil, n.fileError(name, err, false)
	}
	switch {
	case fi.Mode().IsRegular():
	case fi.IsDir():
		return insitu.Object{}, nil, &insitu.Error{Code: insitu.NotFound, Name: name, Msg: "no such object"}
	default: // a link or a special file planted in the store: refused, never followed
		return insitu.Object{}, nil, &insitu.Error{Code: insitu.PermissionDenied, Name: name, Msg: "not a regular file in the store"}
	}
	return insitu.Object{Name: name, Size: fi.Size(), Owner: n.id, Path: n.Path(name), Version: atomicfile.Version(fi)}, fi, nil
}

// Open opens name's object for reading; the caller closes the file. The
// Object has the name, size, owner, Path, Version and Origin, those of
// the open file.
func (n *Node) Open(ctx context.Context, name insitu.Name) (*os.File, insitu.Object, error) {
	if err := n.enter(); err != nil {
		return nil, insitu.Object{}, err
	}
	defer n.leave()
	return n.open(ctx, n.Map(), name)
}

func (n *Node) open(ctx context.Context, m *locality.Map, name insitu.Name) (*os.File, insitu.Object, error) {
	obj, err := n.stat(ctx, m, name)
	if err != nil {
		return nil, insitu.Object{}, err
	}
	f, err := n.root.Open(filepath.FromSlash(relPath(name)))
	if err != nil {
		return nil, insitu.Object{}, n.fileError(name, err, false)
	}
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		f.Close()
		return nil, insitu.Object{}, &insitu.Error{Code: insitu.NotFound, Name: name, Msg: "no such object"}
	}
	obj.Size, obj.Version = fi.Size(), atomicfile.Version(fi)
	origin, _ := atomicfile.FileAttr(f, atomicfile.OriginAttr)
	obj.Origin = validOrigin(origin, name.Key)
	return f, obj, nil
}

// Delete removes name's object, and the directories it leaves empty below
// the bucket's. A missing object is NotFound.
func (n *Node) Delete(ctx context.Context, name insitu.Name) error {
	if err := n.enter(); err != nil {
		return err
	}
	defer n.leave()
	return n.delete(ctx, n.Map(), name)
}

func (n *Node) delete(ctx context.Context, m *locality.Map, name insitu.Name) error {
	if _, err := n.stat(ctx, m, name); err != nil {
		return err
	}
	if err := n.root.Remove(filepath.FromSlash(relPath(name))); err != nil {
		return n.fileError(name, err, false)
	}
	n.removeEmptyParents(name)
	return nil
}

// removeEmptyParents removes the directories below name's bucket that
// the removal of name's file left empty; a parent that is not empty (a
// concurrent Put's temporary file or object is in it) stops the walk. The
// lock keeps the walk out of the window in which a Put has made its
// directories but not yet created its file in them.
func (n *Node) removeEmptyParents(name insitu.Name) {
	mu := n.dirLock(name)
	if mu == nil {
		return
	}
	mu.Lock()
	defer mu.Unlock()
	for dir := path.Dir(name.Key); dir != "."; dir = path.Dir(dir) {
		if n.root.Remove(filepath.FromSlash(name.Bucket+"/"+dir)) != nil {
			return
		}
	}
}

// create starts writing name's object: it makes the object's directories
// and its temporary file, under the read side of name's directory lock,
// so that no Delete removes those directories while they are empty.
func (n *Node) create(name insitu.Name) (*atomicfile.File, error) {
	if mu := n.dirLock(name); mu != nil {
		mu.RLock()
		defer mu.RUnlock()
	}
	return n.files.Create(relPath(name), 0o644, nil)
}

// dirLock returns the lock of the directories that name's object is in,
// or nil for a key without a "/", whose only directory is the bucket's,
// which no Delete removes. The directories a Put makes and a Delete
// removes are all under <bucket>/<the key's first segment>, so the lock
// is one of dirLockStripes chosen by those two.
func (n *Node) dirLock(name insitu.Name) *sync.RWMutex {
	first, _, ok := strings.Cut(name.Key, "/")
	if !ok {
		return nil
	}
	var h maphash.Hash
	h.SetSeed(n.dirSeed)
	h.WriteString(name.Bucket)
	h.WriteByte('/')
	h.WriteString(first)
	return &n.dirLocks[h.Sum64()%dirLockStripes]
}

// fileError classifies a file system error about name (see
// [fserr.Code]); write tells whether the operation was a write, where a
// clash between an object and a directory means a bad key rather than a
// missing object.
func (n *Node) fileError(name insitu.Name, err error, write bool) error {
	switch {
	case write && (errors.Is(err, syscall.EISDIR) || errors.Is(err, syscall.ENOTDIR) || errors.Is(err, fs.ErrExist)):
		return &insitu.Error{Code: insitu.InvalidArgument, Name: name, Err: err,
			Msg: "the key clashes with another object's directory (a key cannot be both an object and a prefix of another key with a \"/\")"}
	case errors.Is(err, os.ErrClosed) && n.life.isClosing():
		return &insitu.Error{Code: insitu.Unavailable, Name: name, Msg: "node " + n.id + " is shut down"}
	}
	switch fserr.Code(err) {
	case insitu.NotFound:
		// The path would only repeat the store's layout.
		return &insitu.Error{Code: insitu.NotFound, Name: name, Msg: "no such object"}
	case insitu.Internal:
		n.log.Error("store failure", "name", name.String(), "err", err)
	default:
		n.log.Debug("store error", "name", name.String(), "err", err)
	}
	return fserr.Wrap(name, n.relative(err))
}

// relative returns err with the store's absolute path taken out of its
// text (see [Node.scrub]), for the clients, which see store-relative names
// only: the errors of an *os.File opened through the store's root (a write
// that finds the disk full, say) name the file by its absolute path. The
// error still unwraps to err, so errors.Is and errors.As see the same
// errors; the node's log has the full text.
func (n *Node) relative(err error) error {
	if msg := err.Error(); strings.Contains(msg, n.dir) {
		return &relativeError{err: err, msg: n.scrub(msg)}
	}
	return err
}

// scrub replaces the store's absolute path in s: "<dir>/bkt/key" becomes
// "bkt/key", and the store directory itself ".".
func (n *Node) scrub(s string) string {
	s = strings.ReplaceAll(s, n.dir+string(filepath.Separator), "")
	return strings.ReplaceAll(s, n.dir, ".")
}

// relativeError is an error whose text has the store's paths made
// relative (see [Node.relative]).
type relativeError struct {
	err error
	msg string
}

func (e *relativeError) Error() string { return e.msg }
func (e *relativeError) Unwrap() error { return e.err }
