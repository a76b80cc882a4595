package server

import (
	"encoding/json"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/loraplex/loraplex/training/jobs"
)

// jobList is the list object of GET /v1/fine_tuning/jobs.
type jobList struct {
	Object  string      `json:"object"`
	Data    []*jobs.Job `json:"data"`
	HasMore bool        `json:"has_more"`
}

// pagedList is the list object of events and checkpoints.
type pagedList[T any] struct {
	Object  string  `json:"object"`
	Data    []T     `json:"data"`
	FirstID *string `json:"first_id,omitempty"`
	LastID  *string `json:"last_id,omitempty"`
	HasMore bool    `json:"has_more"`
}

func (h *fineTuning) createJob(c echo.Context) error {
	body, err := h.s.readBody(c)
	if err != nil {
		return err
	}
	var req jobs.CreateJobRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return badRequest("", "invalid_json", "the body is not a valid fine-tuning job request: %v", err)
	}
	if req.Model == "" {
		return badRequest("model", "missing_required_parameter", "model is required: the base model to fine-tune")
	}
	j, err := h.ft.CreateJob(c.Request().Context(), req)
	if err != nil {
		return fineTuningError(err)
	}
	return c.JSON(http.StatusOK, j)
}

func (h *fineTuning) page(c echo.Context) (jobs.Page, error) {
	n, err := limitParam(c)
	return jobs.Page{After: c.QueryParam("after"), Limit: n}, err
}

func (h *fineTuning) listJobs(c echo.Context) error {
	p, err := h.page(c)
	if err != nil {
		return err
	}
	js, more, err := h.ft.ListJobs(c.Request().Context(), p)
	if err != nil {
		return fineTuningError(err)
	}
	if js == nil {
		js = []*jobs.Job{}
	}
	return c.JSON(http.StatusOK, jobList{Object: "list", Data: js, HasMore: more})
}

func (h *fineTuning) getJob(c echo.Context) error {
	j, err := h.ft.GetJob(c.Request().Context(), c.Param("id"))
	if err != nil {
		return fineTuningError(err)
	}
	return c.JSON(http.StatusOK, j)
}

func (h *fineTuning) cancelJob(c echo.Context) error {
	j, err := h.ft.CancelJob(c.Request().Context(), c.Param("id"))
	if err != nil {
		return fineTuningError(err)
	}
	return c.JSON(http.StatusOK, j)
}

func (h *fineTuning) events(c echo.Context) error {
	p, err := h.page(c)
	if err != nil {
		return err
	}
	evs, more, err := h.ft.Events(c.Request().Context(), c.Param("id"), p)
	if err != nil {
		return fineTuningError(err)
	}
	if evs == nil {
		evs = []jobs.Event{}
	}
	return c.JSON(http.StatusOK, pagedList[jobs.Event]{Object: "list", Data: evs, HasMore: more})
}

func (h *fineTuning) checkpoints(c echo.Context) error {
	p, err := h.page(c)
	if err != nil {
		return err
	}
	cks, more, err := h.ft.Checkpoints(c.Request().Context(), c.Param("id"), p)
	if err != nil {
		return fineTuningError(err)
	}
	list := pagedList[jobs.Checkpoint]{Object: "list", Data: cks, HasMore: more}
	if list.Data == nil {
		list.Data = []jobs.Checkpoint{}
	}
	if len(cks) > 0 {
		list.FirstID, list.LastID = &cks[0].ID, &cks[len(cks)-1].ID
	}
	return c.JSON(http.StatusOK, list)
}
