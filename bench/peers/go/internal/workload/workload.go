// SPDX-License-Identifier: Apache-2.0

// Package workload holds what every Go peer of goro's standard workloads shares: reading the
// size from argv[1] and the worker count from PROCS, the monotonic timer, and the one result
// line that bench/compare parses. The workloads themselves are defined in WORKLOADS.md; each
// lives in its own main package beside this one.
package workload

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"time"
)

// Size returns the workload size from argv[1], or def when no argument is given. A malformed
// or non-positive size is a usage error and exits with status 2.
func Size(def int) int {
	if len(os.Args) < 2 {
		return def
	}
	n, err := strconv.Atoi(os.Args[1])
	if err != nil || n <= 0 {
		fmt.Fprintf(os.Stderr, "usage: %s [size]: size must be a positive integer, got %q\n",
			os.Args[0], os.Args[1])
		os.Exit(2)
	}
	return n
}

// Procs reads the worker count from the PROCS environment variable (default: the number of
// CPUs), applies it with runtime.GOMAXPROCS and returns it.
func Procs() int {
	procs := runtime.NumCPU()
	if s := os.Getenv("PROCS"); s != "" {
		p, err := strconv.Atoi(s)
		if err != nil || p <= 0 {
			fmt.Fprintf(os.Stderr, "PROCS must be a positive integer, got %q\n", s)
			os.Exit(2)
		}
		procs = p
	}
	runtime.GOMAXPROCS(procs)
	return procs
}

// Timer measures elapsed wall time. time.Now carries a monotonic reading, and time.Since uses
// it, so the measurement is immune to wall-clock steps.
type Timer struct{ start time.Time }

// Start returns a running timer.
func Start() Timer { return Timer{start: time.Now()} }

// Elapsed returns the time since Start.
func (t Timer) Elapsed() time.Duration { return time.Since(t.start) }

// Millis is a duration in milliseconds.
func Millis(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e6 }

// NanosPer is a duration divided evenly over count operations, in nanoseconds.
func NanosPer(d time.Duration, count int) float64 { return float64(d.Nanoseconds()) / float64(count) }

// MillionPerSecond is the rate of count items over a duration, in millions per second.
func MillionPerSecond(d time.Duration, count int) float64 {
	return float64(count) / d.Seconds() / 1e6
}

// Report prints the result line and exits with status 1 when the workload's self-check failed.
// The number of decimals follows the unit: ms and ns get one, M/s (millions of items per
// second) two, bytes none.
func Report(name string, procs, n int, value float64, unit string, ok bool) {
	decimals := 1
	switch unit {
	case "M/s":
		decimals = 2
	case "bytes":
		decimals = 0
	}
	check := "ok"
	if !ok {
		check = "FAIL"
	}
	fmt.Printf("workload=%s impl=go procs=%d n=%d value=%.*f unit=%s check=%s\n",
		name, procs, n, decimals, value, unit, check)
	if !ok {
		os.Exit(1)
	}
}
