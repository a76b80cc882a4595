# Multi-stage build: a static, cgo-free binary on a distroless base that runs
# as a non-root user. Mount models and the data directory as volumes:
#   docker run -p 8000:8000 -v $PWD/models:/models -v loraplex-data:/data \
#     loraplex serve --model /models/TinyLlama-1.1B-Chat-v1.0
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/loraplex ./cmd/loraplex

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/loraplex /usr/local/bin/loraplex
ENV LORAPLEX_DATA=/data
VOLUME ["/data"]
EXPOSE 8000
USER nonroot:nonroot
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD ["/usr/local/bin/loraplex", "health", "--url", "http://127.0.0.1:8000/health"]
ENTRYPOINT ["/usr/local/bin/loraplex"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
