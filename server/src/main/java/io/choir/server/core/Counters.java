package io.choir.server.core;

/**
 * Counters is what the core counts for status (ReplicaServer's status and the simulator's totals): plain
 * fields, written and read on the core's thread only. Every part of the core counts into the one
 * instance ReplicaCore owns.
 */
public final class Counters {
  public long requests;
  public long writes;
  public long reads;
  public long busy;
  public long invalid;
  public long tooLarge;
  public long duplicates;
  public long readTimeouts;
  public long batches;
  public long notPrimary;
  public long noQuorum;
  public long preparesSent;
  public long heartbeatsSent;
  public long nacksSent;
  public long nacksReceived;
  public long retransmits;
  public long retransmitsMulticast;
  public long retransmitsFromLog;
  public long gapsDetected;
  public long duplicateEntries;
  public long nonCanonicalEntries;
  public long outOfOrderDropped;
  public long droppedStaleView;
  public long droppedFutureView;
  public long droppedUnexpected;
  public long stateTransfers;
  public long viewChangesStarted;
  public long preVotesStarted;
  public long preVotesGranted;
  public long droppedSticky;
  public long unstickNotices;
  public long viewChangesRefused;
  public long viewChangesUnfetchable;
  public long readRounds;
  /** Linearizable reads the primary's lease confirmed (no round), and those that took a heartbeat round. */
  public long leaseReads;
  public long readIndexReads;
  /** Of the lease reads, those answered by the network edge under a published window (LeaseReadWindow). */
  public long leaseReadsOnEventLoop;
  /** Sequential reads answered by the network edge under a published window (any replica). */
  public long sequentialReadsOnEventLoop;
  /** Newer views this replica did not move to while it must keep to its primary or has just started. */
  public long droppedNewerViewWhileSticky;
  /** Peer messages dropped by PeerMessageChecks (by reason: {@link ReplicaCore#peerRejections()}). */
  public long peerRejected;
  /** NACKs answered with nothing: the asker's resend budget was spent (ResendBudget). */
  public long resendsThrottled;
  /** NACK answers cut short by the asker's credit (a cluster without a key; ResendBudget). */
  public long resendsOverCredit;
  /** Ops a NACK asked for that the asker had acknowledged already (not resent). */
  public long resendsAlreadyAcked;
  /** Membership changes the primary logged (AddLearner or EpochChange), and those it refused. */
  public long memberChanges;
  public long memberChangesRefused;
  /** Applied configuration entries that did not fit the membership (the state machine refused them too). */
  public long configurationEntriesRefused;
  /** Switches to a new epoch (by an applied EpochChange, or a state transfer of a later epoch). */
  public long epochSwitches;
  /** Peer messages of an older epoch (dropped), and of a later one (this replica is behind). */
  public long droppedOldEpoch;
  public long heardLaterEpoch;
  /** Times a replica removed from the membership was told that a later epoch exists. */
  public long toldFormerMembers;
  /** Messages a primary quiet for want of a quorum sent members it had not heard (MembershipPath). */
  public long unheardMemberNotices;
}
