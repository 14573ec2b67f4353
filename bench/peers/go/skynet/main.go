// SPDX-License-Identifier: Apache-2.0

// Command skynet is the Go peer of goro's skynet workload (WORKLOADS.md): a recursive tree
// with fan-out 10 in which every inner node makes its own unbuffered channel, spawns its
// children, sums what they send and sends the sum to its parent, and every leaf sends its
// index. The tree covers the indices [0, n), so the root's sum must be n(n-1)/2.
package main

import "goro/peers/internal/workload"

const fanOut = 10

// skynet sends on out the sum of the indices [first, first+count). A node splits its range
// into at most fanOut nearly equal parts; when n is a power of ten this is the classic tree
// with exactly ten children per inner node.
func skynet(out chan<- int64, first, count int64) {
	if count == 1 {
		out <- first
		return
	}
	children := int64(fanOut)
	if count < children {
		children = count
	}
	in := make(chan int64)
	for i := int64(0); i < children; i++ {
		lo := first + count*i/children
		hi := first + count*(i+1)/children
		go skynet(in, lo, hi-lo)
	}
	var sum int64
	for i := int64(0); i < children; i++ {
		sum += <-in
	}
	out <- sum
}

func main() {
	procs := workload.Procs()
	n := workload.Size(1000000)

	timer := workload.Start()
	root := make(chan int64)
	go skynet(root, 0, int64(n))
	sum := <-root
	elapsed := timer.Elapsed()

	want := int64(n) * int64(n-1) / 2
	workload.Report("skynet", procs, n, workload.Millis(elapsed), "ms", sum == want)
}
