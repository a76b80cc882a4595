package server

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/loraplex/loraplex/training/jobs"
)

// FineTuning is the job manager behind the files and fine-tuning API
// (training/jobs.Manager implements it).
type FineTuning interface {
	MaxFileBytes() int64
	CreateFile(ctx context.Context, filename, purpose string, r io.Reader) (jobs.File, error)
	ListFiles(ctx context.Context, o jobs.ListFilesOptions) ([]jobs.File, bool, error)
	GetFile(ctx context.Context, id string) (jobs.File, error)
	OpenFile(ctx context.Context, id string) (io.ReadCloser, jobs.File, error)
	DeleteFile(ctx context.Context, id string) error

	CreateJob(ctx context.Context, req jobs.CreateJobRequest) (*jobs.Job, error)
	ListJobs(ctx context.Context, p jobs.Page) ([]*jobs.Job, bool, error)
	GetJob(ctx context.Context, id string) (*jobs.Job, error)
	CancelJob(ctx context.Context, id string) (*jobs.Job, error)
	Events(ctx context.Context, id string, p jobs.Page) ([]jobs.Event, bool, error)
	Checkpoints(ctx context.Context, id string, p jobs.Page) ([]jobs.Checkpoint, bool, error)
}

// EnableFineTuning adds the files and fine-tuning routes, served by ft.
// Call it after New and before Serve. Training spends the server's CPU and
// writes adapters every user can then select, so its routes need the admin
// key (which is the API key unless a separate one is set).
func (s *Server) EnableFineTuning(ft FineTuning) {
	r := s.router
	h := &fineTuning{s: s, ft: ft}
	r.Admin(http.MethodPost, "/v1/files", h.createFile)
	r.Admin(http.MethodGet, "/v1/files", h.listFiles)
	r.Admin(http.MethodGet, "/v1/files/:id", h.getFile)
	r.Admin(http.MethodDelete, "/v1/files/:id", h.deleteFile)
	r.Admin(http.MethodGet, "/v1/files/:id/content", h.fileContent)
	r.Admin(http.MethodPost, "/v1/fine_tuning/jobs", h.createJob)
	r.Admin(http.MethodGet, "/v1/fine_tuning/jobs", h.listJobs)
	r.Admin(http.MethodGet, "/v1/fine_tuning/jobs/:id", h.getJob)
	r.Admin(http.MethodPost, "/v1/fine_tuning/jobs/:id/cancel", h.cancelJob)
	r.Admin(http.MethodGet, "/v1/fine_tuning/jobs/:id/events", h.events)
	r.Admin(http.MethodGet, "/v1/fine_tuning/jobs/:id/checkpoints", h.checkpoints)
}

type fineTuning struct {
	s  *Server
	ft FineTuning
}

// fineTuningError maps the job manager's errors to API errors.
func fineTuningError(err error) error {
	status := 0
	switch {
	case errors.Is(err, jobs.ErrNotFound):
		status = http.StatusNotFound
	case errors.Is(err, jobs.ErrInvalid), errors.Is(err, jobs.ErrUnsupported):
		status = http.StatusBadRequest
	case errors.Is(err, jobs.ErrConflict):
		status = http.StatusConflict
	case errors.Is(err, jobs.ErrTooLarge):
		status = http.StatusRequestEntityTooLarge
	case errors.Is(err, jobs.ErrClosed):
		return &APIError{Status: http.StatusServiceUnavailable, Type: "server_error", Code: "server_unavailable", Message: err.Error(), Err: err}
	default:
		return err
	}
	ae := &APIError{Status: status, Type: "invalid_request_error", Message: err.Error(), Err: err}
	var je *jobs.Error
	if errors.As(err, &je) {
		ae.Code, ae.Param, ae.Message = je.Code, je.Param, je.Message
	}
	return ae
}

// fileList is the list object of GET /v1/files.
type fileList struct {
	Object  string      `json:"object"`
	Data    []jobs.File `json:"data"`
	FirstID *string     `json:"first_id"`
	LastID  *string     `json:"last_id"`
	HasMore bool        `json:"has_more"`
}

type fileDeleted struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Deleted bool   `json:"deleted"`
}

func (h *fineTuning) createFile(c echo.Context) error {
	req := c.Request()
	// The form may carry a little more than the file itself.
	req.Body = http.MaxBytesReader(c.Response(), req.Body, h.ft.MaxFileBytes()+1<<20)
	// Parts beyond 8 MiB spill to temporary files, removed below.
	if err := req.ParseMultipartForm(8 << 20); err != nil {
		var mb *http.MaxBytesError
		if errors.As(err, &mb) {
			return err
		}
		return badRequest("file", "invalid_multipart", "expected a multipart/form-data body with a file and a purpose: %v", err)
	}
	defer req.MultipartForm.RemoveAll()
	purpose := req.FormValue("purpose")
	if purpose == "" {
		return badRequest("purpose", "missing_required_parameter", "purpose is required; use \"fine-tune\"")
	}
	fhs := req.MultipartForm.File["file"]
	if len(fhs) != 1 {
		return badRequest("file", "missing_required_parameter", "send exactly one file in the \"file\" field")
	}
	f, err := fhs[0].Open()
	if err != nil {
		return err
	}
	defer f.Close()
	out, err := h.ft.CreateFile(req.Context(), fhs[0].Filename, purpose, f)
	if err != nil {
		return fineTuningError(err)
	}
	return c.JSON(http.StatusOK, out)
}

func (h *fineTuning) listFiles(c echo.Context) error {
	o := jobs.ListFilesOptions{Purpose: c.QueryParam("purpose"), After: c.QueryParam("after")}
	switch c.QueryParam("order") {
	case "", "desc":
	case "asc":
		o.Asc = true
	default:
		return badRequest("order", "invalid_order", "order must be \"asc\" or \"desc\"")
	}
	var err error
	if o.Limit, err = limitParam(c); err != nil {
		return err
	}
	files, more, err := h.ft.ListFiles(c.Request().Context(), o)
	if err != nil {
		return fineTuningError(err)
	}
	list := fileList{Object: "list", Data: files, HasMore: more}
	if list.Data == nil {
		list.Data = []jobs.File{}
	}
	if len(files) > 0 {
		list.FirstID, list.LastID = &files[0].ID, &files[len(files)-1].ID
	}
	return c.JSON(http.StatusOK, list)
}

func (h *fineTuning) getFile(c echo.Context) error {
	f, err := h.ft.GetFile(c.Request().Context(), c.Param("id"))
	if err != nil {
		return fineTuningError(err)
	}
	return c.JSON(http.StatusOK, f)
}

func (h *fineTuning) deleteFile(c echo.Context) error {
	id := c.Param("id")
	if err := h.ft.DeleteFile(c.Request().Context(), id); err != nil {
		return fineTuningError(err)
	}
	return c.JSON(http.StatusOK, fileDeleted{ID: id, Object: "file", Deleted: true})
}

func (h *fineTuning) fileContent(c echo.Context) error {
	rc, f, err := h.ft.OpenFile(c.Request().Context(), c.Param("id"))
	if err != nil {
		return fineTuningError(err)
	}
	defer rc.Close()
	c.Response().Header().Set(echo.HeaderContentLength, strconv.FormatInt(f.Bytes, 10))
	return c.Stream(http.StatusOK, "application/octet-stream", rc)
}

// limitParam reads ?limit=; 0 means the endpoint's default.
func limitParam(c echo.Context) (int, error) {
	v := c.QueryParam("limit")
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		return 0, badRequest("limit", "invalid_limit", "limit must be a positive integer, got %q", v)
	}
	return n, nil
}
