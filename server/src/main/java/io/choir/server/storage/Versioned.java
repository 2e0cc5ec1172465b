package io.choir.server.storage;

/** Versioned is a stored value with its version: the op number of the write that last changed it. */
public record Versioned(byte[] value, long version) {}
