// Types of netquality-client: Twilio Video's network quality names and shapes.

/** 5 very good .. 1 very bad, 0 network broken (reconnecting, failed, or no stats for too long). */
export type NetworkQualityLevel = 0 | 1 | 2 | 3 | 4 | 5;

/** 0 none (remote only), 1 minimal (level), 2 moderate (+ send/recv levels), 3 detailed (+ stats). */
export type NetworkQualityVerbosity = 0 | 1 | 2 | 3;

export interface NetworkQualityConfiguration {
  local?: 1 | 2 | 3;
  remote?: NetworkQualityVerbosity;
}

export interface NetworkQualityBandwidthStats {
  actual: number | null;
  available: number | null;
  level: NetworkQualityLevel | null;
}

export interface NetworkQualityLatencyStats {
  jitter: number | null;
  rtt: number | null;
  level: NetworkQualityLevel | null;
}

export interface NetworkQualityFractionLostStats {
  fractionLost: number | null;
  level: NetworkQualityLevel | null;
}

export interface NetworkQualitySendOrRecvStats {
  bandwidth: NetworkQualityBandwidthStats;
  latency: NetworkQualityLatencyStats;
  fractionLost: NetworkQualityFractionLostStats;
}

export interface NetworkQualityMediaStats {
  send: NetworkQualityLevel | null;
  recv: NetworkQualityLevel | null;
  /** Verbosity 3 only; null otherwise or when there is nothing in that direction. */
  sendStats: NetworkQualitySendOrRecvStats | null;
  recvStats: NetworkQualitySendOrRecvStats | null;
}

export type NetworkQualityAudioStats = NetworkQualityMediaStats;
export type NetworkQualityVideoStats = NetworkQualityMediaStats;

export interface NetworkQualityStats {
  level: NetworkQualityLevel;
  audio: NetworkQualityAudioStats | null;
  video: NetworkQualityVideoStats | null;
}

/** Whose network explains what a participant receives: a publisher's uplink (SFU rooms). */
export interface NetworkQualityCause {
  kind: "upstream";
  /** The publisher whose uplink it is. */
  participantSid: string;
  trackSid: string | null;
}

export declare class EventEmitter {
  on(event: string, listener: (...args: any[]) => void): this;
  once(event: string, listener: (...args: any[]) => void): this;
  off(event: string, listener: (...args: any[]) => void): this;
  removeListener(event: string, listener: (...args: any[]) => void): this;
  removeAllListeners(event?: string): this;
  listenerCount(event: string): number;
  emit(event: string, ...args: any[]): boolean;
}

export declare class Participant extends EventEmitter {
  readonly sid: string;
  /** The participantSid, as Twilio's identity. */
  readonly identity: string;
  /** null until known, then 0..5. */
  readonly networkQualityLevel: NetworkQualityLevel | null;
  /** null below verbosity 2. */
  readonly networkQualityStats: NetworkQualityStats | null;
  /** Set while a publisher's uplink, not this participant's downlink, explains what it receives. */
  readonly networkQualityCause: NetworkQualityCause | null;
  on(event: "networkQualityLevelChanged", listener: (level: NetworkQualityLevel, stats: NetworkQualityStats | null, cause: NetworkQualityCause | null) => void): this;
  on(event: "disconnected", listener: (participant: this) => void): this;
  on(event: string, listener: (...args: any[]) => void): this;
}

export declare class RemoteParticipant extends Participant {
  state?: "disconnected";
}

export declare class LocalParticipant extends Participant {
  setNetworkQualityConfiguration(configuration: NetworkQualityConfiguration): this;
}

export declare class Room extends EventEmitter {
  readonly sid: string;
  readonly name: string;
  readonly state: "connecting" | "connected" | "reconnecting" | "disconnected";
  readonly localParticipant: LocalParticipant;
  /** Remote participants by participantSid. */
  readonly participants: Map<string, RemoteParticipant>;
  readonly networkQualityConfiguration: Required<NetworkQualityConfiguration>;
  setNetworkQualityConfiguration(configuration: NetworkQualityConfiguration): this;
  /** A fresh access token (same room and participant) for the next posts and feed reconnects. */
  updateToken(token: string): this;
  disconnect(): this;
  on(event: "participantConnected" | "participantDisconnected", listener: (participant: RemoteParticipant) => void): this;
  on(event: "reconnecting" | "reconnected", listener: () => void): this;
  on(event: "disconnected", listener: (room: Room) => void): this;
  on(event: string, listener: (...args: any[]) => void): this;
}

export interface ConnectOptions {
  /** The netquality web service, e.g. "https://quality.example.com". */
  url: string;
  /** An access token minted by the app's server (`netquality token`, mint_access_token). */
  token: string;
  /** The local participant's peer connections: their stats are published, their state watched. */
  peerConnections?: RTCPeerConnection[];
  peerConnection?: RTCPeerConnection;
  /** true = {local: 1, remote: 0} (Twilio's defaults). */
  networkQuality?: boolean | NetworkQualityConfiguration;
  /** Region label of the samples (default "default"). */
  region?: string;
  /** Where samples are posted (default `${url}/ingest/v1/samples`). */
  ingestUrl?: string;
  /** "sfu" or "p2p" (or a function returning it): lets the server attribute a publisher's
   * uplink trouble, which it can only through an SFU. */
  topology?: "sfu" | "p2p" | (() => "sfu" | "p2p" | null);
  /** false: follow levels only, publish nothing (stats published some other way). */
  publish?: boolean;
  /** One getStats() sample per interval (default 1000 ms); posted every batchIntervalMs (1000). */
  intervalMs?: number;
  batchIntervalMs?: number;
  /** Reject connect() when no snapshot came within this (default 15000 ms). */
  connectTimeoutMs?: number;
  EventSource?: typeof EventSource;
  fetch?: typeof fetch;
  onError?: (error: unknown) => void;
}

export declare function connect(options: ConnectOptions): Promise<Room>;

export declare const DEFAULT_CONFIGURATION: Required<NetworkQualityConfiguration>;
export declare const version: string;

export declare function tokenClaims(token: string): { roomSid: string; participantSid: string; expiresAt: number | null };

/** The publishing side alone (the former netquality-stats.js, global NetqualityStats). */
export declare const stats: {
  start(options: {
    peerConnections?: RTCPeerConnection[];
    peerConnection?: RTCPeerConnection;
    endpoint: string;
    token: string;
    roomSid: string;
    participantSid: string;
    region: string;
    intervalMs?: number;
    batchIntervalMs?: number;
    maxBatch?: number;
    maxQueue?: number;
    maxBackoffMs?: number;
    fetch?: typeof fetch;
    onResult?: (status: number, body: unknown) => void;
    onError?: (error: unknown) => void;
    topology?: "sfu" | "p2p" | (() => "sfu" | "p2p" | null);
  }): { stop(): Promise<void>; readonly pending: number; readonly dropped: number };
  sampleFromReport(report: unknown, identity: Record<string, unknown>): Record<string, unknown>;
  normalizeReport(report: unknown): Record<string, Record<string, unknown>>;
  mergeReports(reports: unknown[]): Record<string, Record<string, unknown>>;
  mapConnectionState(state: string): string;
  reportTimestamp(report: Record<string, Record<string, unknown>>): number | null;
  worstState(peerConnections: RTCPeerConnection[]): string;
};
