package main

import "time"

// cpuTimes are CPU times used so far (user + system).
type cpuTimes struct {
	self     time.Duration // this process: insitu, the nodes, the clients
	children time.Duration // child processes that have ended: the ffmpeg runs
	running  time.Duration // child processes still running: versitygw, weed
}

func (c cpuTimes) sub(d cpuTimes) cpuTimes {
	return cpuTimes{self: c.self - d.self, children: c.children - d.children, running: c.running - d.running}
}

func (c cpuTimes) total() time.Duration { return c.self + c.children + c.running }
