/**
 * The client library's two ports, time ({@link io.choir.client.spi.ClientScheduler}) and connections
 * ({@link io.choir.client.spi.ClientTransport}), so that the real client can run on a simulated clock
 * and network (see {@link io.choir.client.DeterministicClient}). Applications never need them: the
 * default ChoirClient uses Netty and the system clock.
 *
 * <p>For deterministic simulation and tests; not a stable API.
 */
package io.choir.client.spi;
