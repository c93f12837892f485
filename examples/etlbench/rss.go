package main

import (
	"bufio"
	"bytes"
	"os"
	"strconv"
	"sync"
	"time"
)

// rssSampler follows the resident set size of this process: it reads
// /proc/self/statm every interval (one pread of a file kept open: far
// cheaper than /proc/self/status, which the kernel builds line by line)
// and keeps the largest value seen since the last reset. The kernel's own
// high-water mark (VmHWM) cannot be reset without privileges, so sampling
// is how a peak per configuration is had; a spike shorter than the
// interval can be missed. Where /proc is missing (not Linux) the peak is
// -1: unknown.
type rssSampler struct {
	stop chan struct{}
	done chan struct{}
	page int64

	mu    sync.Mutex
	statm *os.File // nil when /proc is missing
	buf   [128]byte
	max   int64
	seen  bool
}

func startRSS(interval time.Duration) *rssSampler {
	s := &rssSampler{stop: make(chan struct{}), done: make(chan struct{}), page: int64(os.Getpagesize())}
	s.statm, _ = os.Open("/proc/self/statm")
	s.sample()
	go func() {
		defer close(s.done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-s.stop:
				return
			case <-t.C:
				s.sample()
			}
		}
	}()
	return s
}

// sample reads the RSS now: the second field of /proc/self/statm, in pages.
func (s *rssSampler) sample() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.statm == nil {
		return
	}
	n, err := s.statm.ReadAt(s.buf[:], 0)
	if n == 0 && err != nil {
		return
	}
	f := bytes.Fields(s.buf[:n])
	if len(f) < 2 {
		return
	}
	pages, err := strconv.ParseInt(string(f[1]), 10, 64)
	if err != nil {
		return
	}
	s.max = max(s.max, pages*s.page)
	s.seen = true
}

// reset forgets the peak so far: the next peak counts from now.
func (s *rssSampler) reset() {
	s.mu.Lock()
	s.max, s.seen = 0, false
	s.mu.Unlock()
	s.sample()
}

// peak returns the largest RSS in bytes sampled since the last reset,
// taking one more sample now; -1 when unknown.
func (s *rssSampler) peak() int64 {
	s.sample()
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.seen {
		return -1
	}
	return s.max
}

// processPeak returns the kernel's high-water mark of this process's RSS
// (VmHWM) over its whole life, in bytes; -1 when unknown.
func processPeakRSS() int64 {
	if v, ok := procStatus("VmHWM:"); ok {
		return v
	}
	return -1
}

func (s *rssSampler) close() {
	close(s.stop)
	<-s.done
	if s.statm != nil {
		s.statm.Close()
	}
}

// procStatus returns the value in bytes of a "kB" field of
// /proc/self/status, such as "VmRSS:".
func procStatus(field string) (int64, bool) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, false
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Bytes()
		if !bytes.HasPrefix(line, []byte(field)) {
			continue
		}
		f := bytes.Fields(line[len(field):])
		if len(f) != 2 || string(f[1]) != "kB" {
			return 0, false
		}
		v, err := strconv.ParseInt(string(f[0]), 10, 64)
		if err != nil {
			return 0, false
		}
		return v << 10, true
	}
	return 0, false
}
