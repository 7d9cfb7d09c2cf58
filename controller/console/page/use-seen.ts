// true once the element has come within `margin` of the viewport, and from then on: a mesh of hundreds
// of APIs builds only what is in view (the rest as it scrolls in), so the first render stays short.
import { useEffect, useState } from 'preact/hooks';
import type { RefObject } from 'preact';

export function useSeen(ref: RefObject<Element | null>, margin = '400px'): boolean {
  const [seen, setSeen] = useState(false);
  useEffect(() => {
    const el = ref.current;
    if (el === null || seen) return;
    const io = new IntersectionObserver((entries) => {
      if (entries.some((e) => e.isIntersecting)) {
        setSeen(true);
        io.disconnect();
      }
    }, { rootMargin: margin });
    io.observe(el);
    return () => io.disconnect();
  }, [seen]);
  return seen;
}
