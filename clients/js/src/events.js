/*
 * events.js: the small part of node's EventEmitter that Twilio's objects offer (on, once, off,
 * emit), so `participant.on("networkQualityLevelChanged", ...)` reads the same in any browser.
 * A listener that throws is reported to `console.error` and never stops the others.
 */

class EventEmitter {
  constructor() {
    this._listeners = new Map();
  }

  on(event, listener) {
    if (!this._listeners.has(event)) this._listeners.set(event, []);
    this._listeners.get(event).push(listener);
    return this;
  }

  once(event, listener) {
    const wrapper = (...args) => {
      this.off(event, wrapper);
      listener.apply(this, args);
    };
    wrapper.listener = listener;
    return this.on(event, wrapper);
  }

  off(event, listener) {
    const list = this._listeners.get(event);
    if (!list) return this;
    const i = list.findIndex((l) => l === listener || l.listener === listener);
    if (i >= 0) list.splice(i, 1);
    return this;
  }

  removeListener(event, listener) {
    return this.off(event, listener);
  }

  removeAllListeners(event) {
    if (event === undefined) this._listeners.clear();
    else this._listeners.delete(event);
    return this;
  }

  listenerCount(event) {
    return (this._listeners.get(event) || []).length;
  }

  emit(event, ...args) {
    const list = this._listeners.get(event);
    if (!list || !list.length) return false;
    for (const listener of list.slice()) {
      try {
        listener.apply(this, args);
      } catch (error) {
        if (typeof console !== "undefined") console.error(`netquality: a ${event} listener threw`, error);
      }
    }
    return true;
  }
}

export { EventEmitter };
