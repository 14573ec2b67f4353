// SPDX-License-Identifier: Apache-2.0

// Command sieve is the Go peer of goro's sieve workload (WORKLOADS.md): the concurrent prime
// sieve from the Go documentation. A generator sends 2, 3, 4, ... on an unbuffered channel; each
// prime taken from the end of the chain appends a filter goroutine that drops its multiples.
// The n-th prime taken must equal the one a plain sequential sieve finds (48611 for n = 5000).
// The goroutines are left blocked when main returns; process exit ends them.
package main

import "goro/peers/internal/workload"

func generate(out chan<- int) {
	for i := 2; ; i++ {
		out <- i
	}
}

func filter(in <-chan int, out chan<- int, prime int) {
	for {
		if v := <-in; v%prime != 0 {
			out <- v
		}
	}
}

// nthPrime finds the n-th prime (1-based) with a sequential Eratosthenes sieve, doubling the
// bound until it holds n primes.
func nthPrime(n int) int {
	for limit := 16; ; limit *= 2 {
		composite := make([]bool, limit)
		count := 0
		for i := 2; i < limit; i++ {
			if composite[i] {
				continue
			}
			if count++; count == n {
				return i
			}
			for j := i * i; j < limit; j += i {
				composite[j] = true
			}
		}
	}
}

func main() {
	procs := workload.Procs()
	n := workload.Size(5000)

	timer := workload.Start()
	ch := make(chan int)
	go generate(ch)
	prime := 0
	for i := 0; i < n; i++ {
		prime = <-ch
		next := make(chan int)
		go filter(ch, next, prime)
		ch = next
	}
	elapsed := timer.Elapsed()

	workload.Report("sieve", procs, n, workload.Millis(elapsed), "ms", prime == nthPrime(n))
}
