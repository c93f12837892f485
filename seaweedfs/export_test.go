package seaweedfs

import "github.com/insitu-data/insitu"

// OwnerOf is owner over chunks of the given sizes, whose volumes are
// their indexes, for tests.
func OwnerOf(name insitu.Name, sizes []int64, servers func(i int) []string) string {
	chunks := make([]*chunk, len(sizes))
	for i, n := range sizes {
		chunks[i] = &chunk{FileID: "x", Size: uint64(n)}
		chunks[i].Fid = &struct {
			VolumeID uint32 `json:"volume_id"`
			FileKey  uint64 `json:"file_key"`
			Cookie   uint32 `json:"cookie"`
		}{VolumeID: uint32(i + 1)}
	}
	return owner(name, chunks, func(vid uint32) []string { return servers(int(vid - 1)) })
}
