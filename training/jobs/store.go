package jobs

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	_ "modernc.org/sqlite" // registers the "sqlite" driver (pure Go, no cgo)
)

// schema keeps each object as its JSON body plus the columns queries need.
// seq orders lists (ids are random) and is the pagination cursor.
const schema = `
CREATE TABLE IF NOT EXISTS files (
	seq INTEGER PRIMARY KEY AUTOINCREMENT,
	id TEXT NOT NULL UNIQUE,
	purpose TEXT NOT NULL,
	body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS jobs (
	seq INTEGER PRIMARY KEY AUTOINCREMENT,
	id TEXT NOT NULL UNIQUE,
	status TEXT NOT NULL,
	training_file TEXT NOT NULL,
	validation_file TEXT NOT NULL,
	body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS events (
	seq INTEGER PRIMARY KEY AUTOINCREMENT,
	id TEXT NOT NULL UNIQUE,
	job_id TEXT NOT NULL,
	body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_job ON events(job_id, seq);
CREATE TABLE IF NOT EXISTS checkpoints (
	seq INTEGER PRIMARY KEY AUTOINCREMENT,
	id TEXT NOT NULL UNIQUE,
	job_id TEXT NOT NULL,
	step INTEGER NOT NULL,
	dir TEXT NOT NULL,
	body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS checkpoints_job ON checkpoints(job_id, seq);
`

type store struct{ db *sql.DB }

func openStore(path string) (*store, error) {
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_pragma=busy_timeout(5000)")
	if err != nil {
		return nil, err
	}
	// One connection serialises writers, so SQLite never reports "busy"
	// between our own goroutines.
	db.SetMaxOpenConns(1)
	if _, err := db.Exec(schema); err != nil {
		db.Close()
		return nil, fmt.Errorf("creating tables in %s: %w", path, err)
	}
	return &store{db: db}, nil
}

func (s *store) close() error { return s.db.Close() }

// newID returns prefix followed by 24 random base-62 characters.
func newID(prefix string) string {
	const alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	b := make([]byte, 24)
	rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return prefix + string(b)
}

func (s *store) insertFile(ctx context.Context, f File) error {
	body, _ := json.Marshal(f)
	_, err := s.db.ExecContext(ctx, `INSERT INTO files (id, purpose, body) VALUES (?, ?, ?)`, f.ID, f.Purpose, body)
	return err
}

func (s *store) file(ctx context.Context, id string) (File, error) {
	var f File
	err := s.get(ctx, &f, `SELECT body FROM files WHERE id = ?`, id)
	if errors.Is(err, sql.ErrNoRows) {
		return f, &Error{Kind: ErrNotFound, Code: "file_not_found", Param: "file_id", Message: fmt.Sprintf("no file %q", id)}
	}
	return f, err
}

func (s *store) deleteFile(ctx context.Context, id string) error {
	_, err := s.db.ExecContext(ctx, `DELETE FROM files WHERE id = ?`, id)
	return err
}

// fileInUse reports whether an unfinished job reads the file.
func (s *store) fileInUse(ctx context.Context, id string) (string, error) {
	var job string
	err := s.db.QueryRowContext(ctx, `SELECT id FROM jobs WHERE status NOT IN (?, ?, ?) AND (training_file = ? OR validation_file = ?) LIMIT 1`,
		StatusSucceeded, StatusFailed, StatusCancelled, id, id).Scan(&job)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return job, err
}

func (s *store) insertJob(ctx context.Context, j *Job) error {
	body, _ := json.Marshal(j)
	vf := ""
	if j.ValidationFile != nil {
		vf = *j.ValidationFile
	}
	_, err := s.db.ExecContext(ctx, `INSERT INTO jobs (id, status, training_file, validation_file, body) VALUES (?, ?, ?, ?, ?)`,
		j.ID, j.Status, j.TrainingFile, vf, body)
	return err
}

func (s *store) updateJob(ctx context.Context, j *Job) error {
	body, _ := json.Marshal(j)
	_, err := s.db.ExecContext(ctx, `UPDATE jobs SET status = ?, body = ? WHERE id = ?`, j.Status, body, j.ID)
	return err
}

func (s *store) job(ctx context.Context, id string) (*Job, error) {
	j := new(Job)
	err := s.get(ctx, j, `SELECT body FROM jobs WHERE id = ?`, id)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, &Error{Kind: ErrNotFound, Code: "job_not_found", Param: "fine_tuning_job_id", Message: fmt.Sprintf("no fine-tuning job %q", id)}
	}
	return j, err
}

// jobsWithStatus lists job ids in creation order.
func (s *store) jobsWithStatus(ctx context.Context, status string) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id FROM jobs WHERE status = ? ORDER BY seq`, status)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

func (s *store) insertEvent(ctx context.Context, jobID string, e Event) error {
	body, _ := json.Marshal(e)
	_, err := s.db.ExecContext(ctx, `INSERT INTO events (id, job_id, body) VALUES (?, ?, ?)`, e.ID, jobID, body)
	return err
}

func (s *store) insertCheckpoint(ctx context.Context, c Checkpoint, dir string) error {
	body, _ := json.Marshal(c)
	_, err := s.db.ExecContext(ctx, `INSERT INTO checkpoints (id, job_id, step, dir, body) VALUES (?, ?, ?, ?, ?)`,
		c.ID, c.FineTuningJobID, c.StepNumber, dir, body)
	return err
}

// lastCheckpoint returns the directory and step of a job's newest
// checkpoint, or "" when it has none.
func (s *store) lastCheckpoint(ctx context.Context, jobID string) (string, int, error) {
	var dir string
	var step int
	err := s.db.QueryRowContext(ctx, `SELECT dir, step FROM checkpoints WHERE job_id = ? ORDER BY seq DESC LIMIT 1`, jobID).Scan(&dir, &step)
	if errors.Is(err, sql.ErrNoRows) {
		return "", 0, nil
	}
	return dir, step, err
}

func (s *store) get(ctx context.Context, v any, query string, args ...any) error {
	var body []byte
	if err := s.db.QueryRowContext(ctx, query, args...).Scan(&body); err != nil {
		return err
	}
	return json.Unmarshal(body, v)
}

// list pages through table (newest first unless asc) where column = key
// (no filter when column is ""), decoding bodies with decode. It reports
// whether more items follow.
func (s *store) list(ctx context.Context, table, column, key string, p Page, asc bool, decode func([]byte) error) (bool, error) {
	where, args := "1 = 1", []any{}
	if column != "" {
		where, args = column+" = ?", append(args, key)
	}
	cmp, order := "<", "DESC"
	if asc {
		cmp, order = ">", "ASC"
	}
	if p.After != "" {
		var seq int64
		err := s.db.QueryRowContext(ctx, `SELECT seq FROM `+table+` WHERE id = ?`, p.After).Scan(&seq)
		if errors.Is(err, sql.ErrNoRows) {
			return false, invalid("after", "invalid_cursor", "no object %q to list after", p.After)
		}
		if err != nil {
			return false, err
		}
		where += " AND seq " + cmp + " ?"
		args = append(args, seq)
	}
	rows, err := s.db.QueryContext(ctx, `SELECT body FROM `+table+` WHERE `+where+` ORDER BY seq `+order+` LIMIT ?`, append(args, p.Limit+1)...)
	if err != nil {
		return false, err
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		if n == p.Limit {
			return true, nil
		}
		var body []byte
		if err := rows.Scan(&body); err != nil {
			return false, err
		}
		if err := decode(body); err != nil {
			return false, err
		}
		n++
	}
	return false, rows.Err()
}
