// Command peer is the yardstick of the API benchmark (bench/api): the
// smallest honest program on PanelX's own stack — chi routing a GET, pgx
// reading one row by primary key from the same PostgreSQL, encoding/json
// writing it. No authentication, no logging, no metrics: what PanelX adds
// to that is what the benchmark measures.
//
//	go run ./bench/peer -database-url postgres://… -listen 127.0.0.1:8099
//	GET /rows/{uid}   a service's row of PanelX's database
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"

	"github.com/go-chi/chi/v5"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

func main() {
	dbURL := flag.String("database-url", "", "PostgreSQL URL of a PanelX database")
	listen := flag.String("listen", "127.0.0.1:8099", "address to serve on")
	flag.Parse()
	if err := run(*dbURL, *listen); err != nil {
		fmt.Fprintln(os.Stderr, "peer:", err)
		os.Exit(1)
	}
}

type row struct {
	UID     string          `json:"uid"`
	Project string          `json:"project"`
	Name    string          `json:"name"`
	Spec    json.RawMessage `json:"spec"`
	Status  json.RawMessage `json:"status"`
}

func run(dbURL, listen string) error {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, dbURL)
	if err != nil {
		return err
	}
	defer pool.Close()
	r := chi.NewRouter()
	r.Get("/rows/{uid}", func(w http.ResponseWriter, req *http.Request) {
		var out row
		err := pool.QueryRow(req.Context(), `SELECT uid::text, project, name, spec, status FROM panelx.services WHERE uid = $1`,
			chi.URLParam(req, "uid")).Scan(&out.UID, &out.Project, &out.Name, &out.Spec, &out.Status)
		if errors.Is(err, pgx.ErrNoRows) {
			http.NotFound(w, req)
			return
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(out)
	})
	return http.ListenAndServe(listen, r)
}
