"""The IdP protocol endpoints, one module per endpoint, each naming the RFC/OIDC sections it
implements, plus the pieces they share (errors, parameters, client authentication). No web
framework here: the api/ layer adapts requests and responses."""
