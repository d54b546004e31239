module github.com/hotplex/hotplex/examples/go

go 1.23.0

require github.com/hotplex/hotplex/bindings/go v0.0.0

replace github.com/hotplex/hotplex/bindings/go => ../../bindings/go
