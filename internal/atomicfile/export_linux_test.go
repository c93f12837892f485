package atomicfile

// FastCreates returns how many files d created by its fast path, and
// whether it has one (the kernel's openat2 answered its probe).
func FastCreates(d *Dir) (n int64, fast bool) { return d.fast.creates.Load(), d.fast.f != nil }
