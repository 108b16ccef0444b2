/*
 * netquality-client: Network Quality Levels for every participant of a call, with Twilio's names.
 *
 *   import { connect } from "netquality-client";
 *   const room = await connect({ url, token, peerConnections: [pc], networkQuality: { local: 2, remote: 1 } });
 *
 * `stats` is the publishing side alone (what netquality-stats.js offered as NetqualityStats).
 */
import { connect, Room, Participant, LocalParticipant, RemoteParticipant, DEFAULT_CONFIGURATION } from "./room.js";
import { start, sampleFromReport, normalizeReport, mergeReports, mapConnectionState, reportTimestamp, worstState } from "./stats.js";
import { tokenClaims } from "./token.js";

const stats = { start, sampleFromReport, normalizeReport, mergeReports, mapConnectionState, reportTimestamp, worstState };
const version = "0.1.0"; // package.json; test/build.test.js keeps them equal

export { connect, Room, Participant, LocalParticipant, RemoteParticipant, DEFAULT_CONFIGURATION, stats, tokenClaims, version };
