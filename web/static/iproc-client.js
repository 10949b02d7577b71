/**
 * @file iproc-client.js: a small browser WebSocket client for the iproc
 * WebSocket protocol. It has no dependencies; copy it into a desktop as it is.
 *
 * - request(command, data, resource) sends an envelope with a generated `id`
 *   and resolves with the response envelope (success, confirm or failure
 *   alike), or rejects on timeout or when the connection drops.
 * - on(name, fn) listens to server events by name; on('*', fn) to all of them.
 *   The client also emits its own events (names without a dot):
 *   'state' {state: 'connecting'|'open'|'closed'|'resumed', ...},
 *   'session' {id, resumeToken, agentId} or null when the session is gone,
 *   'resumed' {recovered, seq} (recovered false: re-read your reports),
 *   'sessionlost' the failed resumeSession response,
 *   'response' responses matching no pending request.
 * - An application `ping` every 20 s detects dead connections (browsers do
 *   not expose WebSocket ping frames).
 * - The highest `seq` seen is kept; after an unexpected close the client
 *   reconnects with exponential back-off (with jitter, at most 5 s by
 *   default; retryNow() skips the wait) and resumes its session with
 *   resumeSession {id, resumeToken, since: lastSeq}. The 'closed' state
 *   event carries retryAt (ms since the epoch) for a countdown.
 *
 * @example
 * const c = new IprocClient();
 * c.on('*', ev => console.log(ev.name, ev.data));
 * await c.connect();
 * const r = await c.login({id: '1001', password: 'secret'});
 * // or, with single sign-on: await c.login({id: '1001', token: idToken});
 * if (r.result === 'success') await c.request('getState', {}, r.resource.id);
 */

/** @typedef {{command: string, id?: string, result: 'success'|'confirm'|'failure',
 *   data?: object, resource?: object, message?: string,
 *   failure?: {code: string, message: string, context?: string}, original?: object}} Response */
/** @typedef {{name: string, seq?: number, data: object}} ServerEvent */
/** @typedef {{id: string, resumeToken: string, agentId: string}} Session */

/** The page-relative WebSocket URL: ws(s)://<this host>/ws. */
export function defaultURL() {
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${scheme}//${location.host}/ws`;
}

export class IprocClient {
  /**
   * @param {object} [opts]
   * @param {number} [opts.timeout=10000] ms before a request rejects.
   * @param {number} [opts.heartbeat=20000] ms between application pings.
   * @param {number} [opts.minBackoff=500] first reconnect delay, ms.
   * @param {number} [opts.maxBackoff=5000] longest reconnect delay, ms.
   */
  constructor(opts = {}) {
    this.timeout = opts.timeout ?? 10000;
    this.heartbeat = opts.heartbeat ?? 20000;
    this.minBackoff = opts.minBackoff ?? 500;
    this.maxBackoff = opts.maxBackoff ?? 5000;
    /** Highest event `seq` received so far (0: none). */
    this.lastSeq = 0;
    /** @type {Session|null} the session from the last prepareSession success. */
    this.session = null;
    /** @type {WebSocket|null} */
    this.ws = null;
    this.url = '';
    this.nextId = 1;
    this.pending = new Map(); // id -> {resolve, reject, timer}
    this.listeners = new Map(); // name -> Set<fn>
    this.attempt = 0;
    this.stopped = true;
    this.pingTimer = 0;
    this.retryTimer = 0;
  }

  /** True while the socket is open. */
  get connected() {
    return this.ws?.readyState === WebSocket.OPEN;
  }

  /**
   * Opens the connection (and keeps it open: drops are retried with back-off
   * until close() is called).
   * @param {string} [url] defaults to defaultURL().
   * @returns {Promise<void>} resolves once the socket is open.
   */
  connect(url = defaultURL()) {
    this.url = url;
    this.stopped = false;
    return new Promise((resolve) => {
      const off = this.on('state', (s) => {
        if (s.state === 'open') { off(); resolve(); }
      });
      this.open();
    });
  }

  /** Reconnects now instead of waiting out the back-off (no-op while open or stopped). */
  retryNow() {
    if (this.stopped || this.ws) return;
    clearTimeout(this.retryTimer);
    this.open();
  }

  /** Closes the connection for good: no reconnect, no resume. */
  close() {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    this.drop(1000, 'client closed');
  }

  /**
   * Sends a request and waits for its response.
   * @param {string} command
   * @param {object} [data={}]
   * @param {string} [resource] target resource id (the session id for session commands).
   * @returns {Promise<Response>} the response envelope, whatever its result.
   */
  request(command, data = {}, resource = undefined) {
    if (!this.connected) return Promise.reject(new Error('not connected'));
    const id = `c${this.nextId++}`;
    const msg = {command, data, id};
    if (resource) msg.resource = resource;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`${command}: no response within ${this.timeout} ms`));
      }, this.timeout);
      this.pending.set(id, {resolve, reject, timer});
      this.ws.send(JSON.stringify(msg));
    });
  }

  /**
   * Logs in (prepareSession) with a password or, with single sign-on, an
   * OpenID Connect ID token from the identity provider: give one of them.
   * @param {{id: string, password?: string, token?: string, model?: string, override?: boolean}} creds
   * @returns {Promise<Response>} the prepareSession response.
   */
  login({id, password, token, model = 'uccx', override = false}) {
    const agent = token ? {id, token} : {id, password};
    return this.request('prepareSession', {model, override, agent});
  }

  /**
   * Adds a listener. Server events by name, '*' for every server event, or a
   * client event ('state', 'session', 'resumed', 'sessionlost', 'response').
   * @param {string} name
   * @param {(payload: any) => void} fn
   * @returns {() => void} removes the listener.
   */
  on(name, fn) {
    if (!this.listeners.has(name)) this.listeners.set(name, new Set());
    this.listeners.get(name).add(fn);
    return () => this.off(name, fn);
  }

  /** Removes a listener added with on(). */
  off(name, fn) {
    this.listeners.get(name)?.delete(fn);
  }

  /** @private */
  emit(name, payload) {
    for (const fn of [...(this.listeners.get(name) ?? [])]) {
      try { fn(payload); } catch (err) { console.error(`iproc listener for ${name}:`, err); }
    }
  }

  /** @private Starts one connection attempt. */
  open() {
    this.emit('state', {state: 'connecting', attempt: this.attempt});
    const ws = new WebSocket(this.url);
    this.ws = ws;
    ws.onopen = () => this.opened();
    ws.onmessage = (e) => this.receive(e.data);
    ws.onclose = (e) => this.closed(e.code, e.reason);
  }

  /** @private */
  async opened() {
    this.attempt = 0;
    this.pingTimer = setInterval(() => this.ping(), this.heartbeat);
    const s = this.session;
    if (!s) { this.emit('state', {state: 'open'}); return; }
    // A reconnect: take the session back and replay what we missed.
    let r;
    try {
      r = await this.request('resumeSession', {id: s.id, resumeToken: s.resumeToken, since: this.lastSeq});
    } catch {
      return; // the connection dropped again; closed() takes over
    }
    if (r.result === 'success') {
      if (r.data?.resumeToken) s.resumeToken = r.data.resumeToken;
      this.emit('state', {state: 'resumed', ...r.data});
      this.emit('resumed', r.data ?? {});
    } else {
      this.setSession(null);
      this.emit('sessionlost', r);
      this.emit('state', {state: 'open'});
    }
  }

  /** @private A heartbeat; a missing answer means a dead connection. */
  ping() {
    this.request('ping').catch(() => {
      if (this.connected) this.drop(4000, 'heartbeat timeout');
    });
  }

  /** @private Handles one frame. */
  receive(text) {
    let msg;
    try { msg = JSON.parse(text); } catch { return; }
    if (msg === null || typeof msg !== 'object') return;
    if ('result' in msg) { this.response(msg); return; }
    if (typeof msg.name !== 'string') return;
    if (Number.isInteger(msg.seq) && msg.seq > this.lastSeq) this.lastSeq = msg.seq;
    if (msg.name === 'session.ended') this.setSession(null);
    this.emit(msg.name, msg);
    this.emit('*', msg);
  }

  /** @private Resolves the pending request a response answers. */
  response(r) {
    if (r.command === 'prepareSession' && r.result === 'success' && r.resource?.id) {
      const agentId = r.resource.data?.agent?.id ?? r.original?.data?.agent?.id ?? '';
      this.setSession({id: r.resource.id, resumeToken: r.resource.resumeToken, agentId: String(agentId)});
    } else if (r.command === 'closeSession' && r.result === 'success') {
      this.setSession(null);
    }
    const p = r.id !== undefined && this.pending.get(String(r.id));
    if (!p) { this.emit('response', r); return; }
    this.pending.delete(String(r.id));
    clearTimeout(p.timer);
    p.resolve(r);
  }

  /** @private */
  setSession(s) {
    this.session = s;
    this.emit('session', s);
  }

  /** @private Abandons the current socket now, without waiting for its close handshake. */
  drop(code, reason) {
    const ws = this.ws;
    if (!ws) return;
    ws.onopen = ws.onmessage = ws.onclose = null;
    try { ws.close(code, reason); } catch { /* already closing */ }
    this.closed(code, reason);
  }

  /** @private Cleans up after a close and schedules the reconnect. */
  closed(code, reason) {
    this.ws = null;
    clearInterval(this.pingTimer);
    for (const [id, p] of this.pending) {
      clearTimeout(p.timer);
      p.reject(new Error('connection closed'));
      this.pending.delete(id);
    }
    const willRetry = !this.stopped;
    const delay = willRetry ? this.backoff() : 0;
    this.emit('state', {state: 'closed', code, reason, retryIn: delay, retryAt: Date.now() + delay});
    if (willRetry) this.retryTimer = setTimeout(() => this.open(), delay);
  }

  /** @private Exponential back-off with jitter, capped at maxBackoff. */
  backoff() {
    const base = Math.min(this.maxBackoff, this.minBackoff * 2 ** this.attempt++);
    return Math.round(base / 2 + Math.random() * base / 2);
  }
}
