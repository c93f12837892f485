//go:build !unix

package main

// sampleCPU is not implemented on this system.
func sampleCPU() (cpuTimes, bool) { return cpuTimes{}, false }
