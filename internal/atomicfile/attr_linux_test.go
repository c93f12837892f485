package atomicfile_test

import (
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"

	"github.com/insitu-data/insitu"
	"github.com/insitu-data/insitu/internal/atomicfile"
)

func TestAttrCommittedWithTheBytes(t *testing.T) {
	forEachCreate(t, func(t *testing.T, create createFunc) {
		t.Parallel()
		root, dir := openRoot(t)
		f, err := create(root, "d/obj", 0o644, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Write([]byte("bytes")); err != nil {
			t.Fatal(err)
		}
		if err := f.SetAttr(atomicfile.OriginAttr, "origin-1"); err != nil {
			t.Fatal(err)
		}
		// Not visible before the commit.
		if _, err := os.Stat(filepath.Join(dir, "d", "obj")); !os.IsNotExist(err) {
			t.Fatalf("the object shows before its commit: %v", err)
		}
		if err := f.Commit(); err != nil {
			t.Fatal(err)
		}
		if err := f.SetAttr(atomicfile.OriginAttr, "late"); err == nil {
			t.Error("SetAttr after Commit succeeded")
		}
		fi, err := root.Stat("d/obj")
		if err != nil {
			t.Fatal(err)
		}
		got, err := atomicfile.ReadAttr(root, "d/obj", fi, atomicfile.OriginAttr)
		if err != nil || got != "origin-1" {
			t.Fatalf("ReadAttr = %q, %v; want origin-1", got, err)
		}

		// A new version of the object, without the attribute, has none.
		f, err = create(root, "d/obj", 0o644, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := f.Commit(); err != nil {
			t.Fatal(err)
		}
		fi2, _ := root.Stat("d/obj")
		if got, err := atomicfile.ReadAttr(root, "d/obj", fi2, atomicfile.OriginAttr); err != nil || got != "" {
			t.Errorf("ReadAttr of the replaced object = %q, %v; want none", got, err)
		}
		// Described by an older stat: another file, so none.
		if got, err := atomicfile.ReadAttr(root, "d/obj", fi, atomicfile.OriginAttr); err != nil || got != "" {
			t.Errorf("ReadAttr with the old file's stat = %q, %v; want none", got, err)
		}
	})
}

func TestReadAttrNoFollowNoBlock(t *testing.T) {
	t.Parallel()
	root, dir := openRoot(t)
	target := filepath.Join(dir, "target")
	if err := os.WriteFile(target, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Setxattr(target, atomicfile.OriginAttr, []byte("o"), 0); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("target", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(dir, "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"link", "fifo"} {
		if got, err := atomicfile.ReadAttr(root, name, nil, atomicfile.OriginAttr); got != "" {
			t.Errorf("ReadAttr(%s) = %q, %v; want none", name, got, err)
		}
	}
	if got, err := atomicfile.ReadAttr(root, "target", nil, atomicfile.OriginAttr); err != nil || got != "o" {
		t.Errorf("ReadAttr(target) = %q, %v; want o", got, err)
	}
}

func TestVersion(t *testing.T) {
	t.Parallel()
	_, dir := openRoot(t)
	p := filepath.Join(dir, "f")
	if err := os.WriteFile(p, []byte("abc"), 0o644); err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(p)
	v1 := atomicfile.Version(fi)
	if want := "3-" + itoa(fi.ModTime().UnixNano()); v1 != want {
		t.Errorf("Version = %q, want %q", v1, want)
	}
	if err := os.Chtimes(p, fi.ModTime(), fi.ModTime().Add(1)); err != nil {
		t.Fatal(err)
	}
	fi, _ = os.Stat(p)
	if atomicfile.Version(fi) == v1 {
		t.Error("the version did not change with the modification time")
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// TestOriginInInode: on a file system that gives a long attribute value a
// block of its own (ext4 with its default 256-byte inodes), the compact
// form of a typical origin takes none: a 4 KiB object with its origin
// takes the blocks of one without.
func TestOriginInInode(t *testing.T) {
	root, dir := openRoot(t)
	text := insitu.Origin{Input: insitu.Name{Bucket: "in", Key: "d0009/f0009261"}, Version: "4096-1796356836434057721",
		Transform: "identity", Args: insitu.ArgsDigest("")}.String()
	blocks := func(name, attr string) int64 {
		t.Helper()
		f, err := atomicfile.Create(root, name, 0o644, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Write(make([]byte, 4096)); err != nil {
			t.Fatal(err)
		}
		if attr != "" {
			if err := f.SetAttr(atomicfile.OriginAttr, attr); err != nil {
				if atomicfile.AttrUnsupported(err) {
					t.Skipf("the file system of %s keeps no extended attributes", dir)
				}
				t.Fatal(err)
			}
		}
		if err := f.Commit(); err != nil {
			t.Fatal(err)
		}
		var st syscall.Stat_t
		if err := syscall.Stat(filepath.Join(dir, name), &st); err != nil {
			t.Fatal(err)
		}
		return st.Blocks
	}
	none, asText := blocks("none", ""), blocks("text", text)
	if asText == none {
		t.Skipf("the file system of %s keeps a %d-byte attribute value without a block of its own: nothing to show", dir, len(text))
	}
	compact := atomicfile.EncodeOrigin(text, "d0009/f0009261")
	if got := blocks("d0009/f0009261", compact); got != none {
		t.Errorf("a 4 KiB file with the compact origin (%d bytes) takes %d blocks of 512 bytes, without an origin %d, with the text (%d bytes) %d",
			len(compact), got, none, len(text), asText)
	}
}
