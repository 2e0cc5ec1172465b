package io.choir.checker;

/**
 * Verdict is the answer of a check. UNKNOWN exists so that a search cut short by its deadline or its
 * memory budget can never be mistaken for a pass.
 */
public enum Verdict {
  /** VALID: a linearization was found. */
  VALID,
  /** INVALID: the search proved that no linearization exists. */
  INVALID,
  /** UNKNOWN: the search stopped before deciding (deadline or state budget). */
  UNKNOWN
}
