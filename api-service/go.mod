module github.com/quirehq/quire/api-service

go 1.26.8
