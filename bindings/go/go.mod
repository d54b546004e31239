module github.com/hotplex/hotplex/bindings/go

go 1.23.0
