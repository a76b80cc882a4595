// Package hub downloads Llama-family model repositories from the Hugging Face
// Hub (or any server speaking its API) into a local cache: only the files the
// engine reads, resumed with HTTP Range after a cut connection and checked
// against the sha256 the server reports.
package hub
