package s3

// SetSweepPage sets the number of uploads Sweep asks for in one listing,
// so that a test can make it page through a few.
func SetSweepPage(s *Sink, n int) { s.sweepPage = n }
