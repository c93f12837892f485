//go:build !linux

package source

// dirStat stats the files of one directory by their paths.
type dirStat struct{ dir string }

func openDirStat(dir string) dirStat { return dirStat{dir: dir} }

func (d dirStat) lstat(name string) (fileStat, error) { return lstatPath(d.dir, name) }

func (d dirStat) close() {}
