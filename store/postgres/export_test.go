package postgres

// MapErr lets the tests check how raw SQL errors map to store errors.
var MapErr = mapErr
