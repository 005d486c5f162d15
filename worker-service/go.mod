module github.com/quirehq/quire/worker-service

go 1.26.8

require github.com/quirehq/quire/shared v0.0.0

replace github.com/quirehq/quire/shared => ../shared
