// SPDX-License-Identifier: Apache-2.0

// Command http_service is the Go peer of goro's example http_service (issue 16; WORKLOADS.md,
// "Network workloads"), in net/http, serving:
//
//	GET  /healthz    200 "ok"
//	GET  /plaintext  200 text/plain "Hello, World!"
//	GET  /json       200 application/json {"message":"Hello, World!"}, serialised per request
//	POST /echo       200 with the request body as the response body
//
// An unknown path gets 404 and a known one with another method 405. Flags: --listen HOST:PORT,
// --workers N (GOMAXPROCS), --lifetime SECONDS. Prints the bound address first. bench/http runs
// it beside goro's under wrk and bench/net/http_open_loop.
package main

import (
	"encoding/json"
	"io"
	"net/http"
	"os"

	"goro/peers/internal/netflags"
)

type message struct {
	Message string `json:"message"`
}

// only wraps a handler so that any method but `method` gets 405.
func only(method string, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != method {
			w.Header().Set("Allow", method)
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		h(w, r)
	}
}

func main() {
	ln := netflags.Parse().Listen()
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", only(http.MethodGet, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "ok")
	}))
	mux.HandleFunc("/plaintext", only(http.MethodGet, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "Hello, World!")
	}))
	mux.HandleFunc("/json", only(http.MethodGet, func(w http.ResponseWriter, r *http.Request) {
		body, err := json.Marshal(message{Message: "Hello, World!"})
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(body)
	}))
	mux.HandleFunc("/echo", only(http.MethodPost, func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Write(body)
	}))
	// ServeMux answers "/" and every path it does not know with 404.
	if err := http.Serve(ln, mux); err != nil {
		os.Exit(1)
	}
}
