//go:build unix

package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// sampleCPU returns the CPU time used so far by this process, by its
// children that have ended (the ffmpeg processes), and by its children
// still running (versitygw, weed; read from /proc, so Linux only).
func sampleCPU() (cpuTimes, bool) {
	var self, children syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &self) != nil || syscall.Getrusage(syscall.RUSAGE_CHILDREN, &children) != nil {
		return cpuTimes{}, false
	}
	return cpuTimes{
		self:     tv(self.Utime) + tv(self.Stime),
		children: tv(children.Utime) + tv(children.Stime),
		running:  runningChildrenCPU(),
	}, true
}

func tv(t syscall.Timeval) time.Duration {
	return time.Duration(t.Sec)*time.Second + time.Duration(t.Usec)*time.Microsecond
}

// clockTick is the unit of the times in /proc/<pid>/stat: USER_HZ, 100 on
// every Linux system in use.
const clockTick = 10 * time.Millisecond

// runningChildrenCPU sums the user and system time of the running child
// processes of this process, from /proc; 0 where /proc is missing.
func runningChildrenCPU() time.Duration {
	files, _ := filepath.Glob("/proc/self/task/*/children")
	var total time.Duration
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, pid := range strings.Fields(string(b)) {
			stat, err := os.ReadFile("/proc/" + pid + "/stat")
			if err != nil {
				continue
			}
			// The fields after the command name, which is in parentheses
			// and may hold spaces: state is the first, utime the 12th.
			s := string(stat)
			i := strings.LastIndexByte(s, ')')
			if i < 0 {
				continue
			}
			fields := strings.Fields(s[i+1:])
			if len(fields) < 13 {
				continue
			}
			u, err1 := strconv.ParseInt(fields[11], 10, 64)
			st, err2 := strconv.ParseInt(fields[12], 10, 64)
			if err1 == nil && err2 == nil {
				total += time.Duration(u+st) * clockTick
			}
		}
	}
	return total
}
