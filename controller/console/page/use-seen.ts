// true once the element has come within `margin` of the viewport, and from then on: a mesh of hundreds
// of APIs builds only what is in view (the rest as it scrolls in), so the first render stays short.
// One IntersectionObserver per margin serves every element (hundreds of observers cost the first render).
import { useEffect, useState } from 'preact/hooks';
import type { RefObject } from 'preact';

const observers = new Map<string, { io: IntersectionObserver; waiting: Map<Element, () => void> }>();

function observe(el: Element, margin: string, seen: () => void): () => void {
  let o = observers.get(margin);
  if (o === undefined) {
    const waiting = new Map<Element, () => void>();
    const io = new IntersectionObserver((entries) => {
      for (const e of entries) {
        if (!e.isIntersecting) continue;
        const done = waiting.get(e.target);
        waiting.delete(e.target);
        io.unobserve(e.target);
        done?.();
      }
    }, { rootMargin: margin });
    observers.set(margin, (o = { io, waiting }));
  }
  const { io, waiting } = o;
  waiting.set(el, seen);
  io.observe(el);
  return () => {
    waiting.delete(el);
    io.unobserve(el);
  };
}

export function useSeen(ref: RefObject<Element | null>, margin = '400px'): boolean {
  const [seen, setSeen] = useState(false);
  useEffect(() => {
    const el = ref.current;
    if (el === null || seen) return;
    return observe(el, margin, () => setSeen(true));
  }, [seen]);
  return seen;
}
