package seaweedfs

import (
	"cmp"
	"context"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/cespare/xxhash/v2"
	"github.com/insitu-data/insitu"
)

// modeDir is os.ModeDir, the directory bit of a filer entry's Mode.
const modeDir = 1 << 31

// entry is a filer entry as the filer's HTTP API shows it in JSON (a
// listing's Entries, or GET ?metadata=true): filer.Entry, whose fields
// are Go names except the chunks.
type entry struct {
	FullPath      string
	Mode          uint32
	FileSize      uint64
	SymlinkTarget string
	Content       []byte
	Remote        *struct {
		RemoteSize int64 `json:"remote_size"`
	}
	Chunks []*chunk `json:"chunks"`
}

// chunk is a filer_pb.FileChunk in JSON.
type chunk struct {
	FileID string `json:"file_id"`
	Offset int64  `json:"offset"`
	Size   uint64 `json:"size"`
	Fid    *struct {
		VolumeID uint32 `json:"volume_id"`
		FileKey  uint64 `json:"file_key"`
		Cookie   uint32 `json:"cookie"`
	} `json:"fid"`
	CipherKey       []byte `json:"cipher_key"`
	IsChunkManifest bool   `json:"is_chunk_manifest"`
	SSEType         int    `json:"sse_type"`
}

func (e *entry) isDir() bool { return e.Mode&modeDir != 0 }

// version is the entry's Object.Version: its size and an XXH64 of its
// chunks' file IDs (and of its inline content). SeaweedFS writes new
// bytes to new needles, so a rewrite changes the file IDs, and the
// version, even at the same size and within the same second.
func (e *entry) version() string {
	h := xxhash.New()
	for _, c := range e.Chunks {
		h.WriteString(c.fileID())
		h.Write([]byte{0})
	}
	h.Write(e.Content)
	return fmt.Sprintf("%d-%016x", e.FileSize, h.Sum64())
}

// hasBytes reports whether the entry holds an object's bytes: a file, or a
// directory the filer made of a file when a key below it was written (the
// S3 semantics of SeaweedFS keep "a" and "a/b" both), which keeps its
// chunks.
func (e *entry) hasBytes() bool {
	if !e.isDir() {
		return e.SymlinkTarget == ""
	}
	return len(e.Chunks) > 0 || len(e.Content) > 0 || e.FileSize > 0
}

// base is the last segment of the entry's path.
func (e *entry) base() string {
	return e.FullPath[strings.LastIndexByte(e.FullPath, '/')+1:]
}

// fileID returns the chunk's "volumeId,needleIdCookie", from FileId or,
// when the filer left it empty, from Fid.
func (ch *chunk) fileID() string {
	if ch.FileID != "" || ch.Fid == nil {
		return ch.FileID
	}
	var b [12]byte
	binary.BigEndian.PutUint64(b[:8], ch.Fid.FileKey)
	binary.BigEndian.PutUint32(b[8:], ch.Fid.Cookie)
	i := 0
	for i < 7 && b[i] == 0 { // the needle id without leading zero bytes
		i++
	}
	return strconv.FormatUint(uint64(ch.Fid.VolumeID), 10) + "," + hex.EncodeToString(b[i:])
}

// volumeID returns the chunk's volume, or 0 when its file id is malformed.
func (ch *chunk) volumeID() uint32 {
	if ch.Fid != nil && ch.Fid.VolumeID != 0 {
		return ch.Fid.VolumeID
	}
	v, _, ok := strings.Cut(ch.FileID, ",")
	if !ok {
		return 0
	}
	n, err := strconv.ParseUint(v, 10, 32)
	if err != nil {
		return 0
	}
	return uint32(n)
}

// direct returns the entry's chunks in offset order when they can be read
// one after the other straight from volume servers: plain chunks (no
// manifest, no cipher, no server-side encryption) that tile the file from
// 0 to its size with no gap or overlap. ok is false otherwise, and the
// filer must assemble the bytes.
func (e *entry) direct() (chunks []*chunk, ok bool) {
	if len(e.Content) > 0 || e.Remote != nil && len(e.Chunks) == 0 {
		return nil, false
	}
	chunks = slices.Clone(e.Chunks)
	slices.SortStableFunc(chunks, func(a, b *chunk) int { return cmp.Compare(a.Offset, b.Offset) })
	var off int64
	for _, ch := range chunks {
		if ch.IsChunkManifest || len(ch.CipherKey) > 0 || ch.SSEType != 0 || ch.Offset != off || ch.fileID() == "" || ch.volumeID() == 0 {
			return nil, false
		}
		off += int64(ch.Size)
	}
	return chunks, uint64(off) == e.FileSize
}

// owner returns the volume server that holds most of the entry's bytes,
// given where each volume is (servers of a volume, as the master says).
// Replicas count for each server that holds them; among servers holding as
// much, the one of highest rendezvous weight for name wins, so that the
// objects of a replicated volume spread over its replicas and each keeps
// the same owner from one listing to the next. "" when no server holds any
// byte (an empty file, bytes in the filer's store, volumes the master does
// not know).
func owner(name insitu.Name, chunks []*chunk, servers func(vid uint32) []string) string {
	held := map[string]uint64{}
	for _, ch := range chunks {
		for _, s := range servers(ch.volumeID()) {
			held[s] += max(ch.Size, 1)
		}
	}
	best, bestBytes, bestWeight := "", uint64(0), uint64(0)
	h := xxhash.Sum64String(name.Bucket + "/" + name.Key)
	for s, n := range held {
		w := mix(xxhash.Sum64String(s) ^ h)
		if n > bestBytes || n == bestBytes && (w > bestWeight || w == bestWeight && s < best) {
			best, bestBytes, bestWeight = s, n, w
		}
	}
	return best
}

// mix is the splitmix64 finalizer.
func mix(z uint64) uint64 {
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// metadata returns the filer's entry at path p (GET ?metadata=true). A
// missing path is NotFound; an answer that is not a filer's is
// InvalidArgument.
func (c *Client) metadata(ctx context.Context, p string, name insitu.Name) (*entry, error) {
	var e entry
	what := "the filer's metadata of " + p
	err := c.getFilerJSON(ctx, c.filerURL(p, url.Values{"metadata": {"true"}}), nil, what, name, &e)
	if err != nil {
		return nil, err
	}
	if e.FullPath == "" {
		return nil, c.notAFiler(name, what, nil)
	}
	return &e, nil
}

// object returns the entry at p when it is an object, else NotFound.
func (c *Client) object(ctx context.Context, p string, name insitu.Name) (*entry, error) {
	e, err := c.metadata(ctx, p, name)
	if err != nil {
		return nil, err
	}
	if !e.hasBytes() {
		what := "a directory"
		if e.SymlinkTarget != "" {
			what = "a symbolic link"
		}
		return nil, &insitu.Error{Code: insitu.NotFound, Name: name, Msg: fmt.Sprintf("the filer path %s is %s, not an object", p, what)}
	}
	return e, nil
}

// Chunk is where a piece of an object's bytes lives.
type Chunk struct {
	// FileID is the chunk's needle, "volumeId,needleIdCookie": a GET of
	// http://<volume server>/<FileID> returns its bytes.
	FileID string
	// Offset and Size place the chunk in the object.
	Offset, Size int64
	// Servers are the volume servers that hold the chunk's volume, as the
	// master says now; none when no live server holds it.
	Servers []string
}

// Chunks returns where the bytes of name's object are, chunk by chunk in
// offset order, with the volume servers that hold each (asked of the
// master afresh). An object held in the filer's own store, or empty, has
// no chunks. A missing object is NotFound.
func (c *Client) Chunks(ctx context.Context, name insitu.Name) ([]Chunk, error) {
	p, err := c.Path(name)
	if err != nil {
		return nil, err
	}
	e, err := c.object(ctx, p, name)
	if err != nil {
		return nil, err
	}
	chunks := slices.Clone(e.Chunks)
	slices.SortStableFunc(chunks, func(a, b *chunk) int { return cmp.Compare(a.Offset, b.Offset) })
	out := make([]Chunk, 0, len(chunks))
	for _, ch := range chunks {
		servers, err := c.locs.lookup(ctx, ch.volumeID(), name, true)
		if err != nil {
			return nil, err
		}
		out = append(out, Chunk{FileID: ch.fileID(), Offset: ch.Offset, Size: int64(ch.Size), Servers: servers})
	}
	return out, nil
}

// acceptJSON asks the filer for a listing in JSON rather than HTML.
var acceptJSON = http.Header{"Accept": {"application/json"}}
