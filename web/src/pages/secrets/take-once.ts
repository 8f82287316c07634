import { useRef } from 'react';

/**
 * Hands a secret value to a mutation without it becoming the mutation's
 * variables (react-query keeps those in its cache): `put` it just before
 * `mutate()`, and the mutation function `take`s it, which forgets it.
 */
export function useTakeOnce(): { put: (value: string) => void; take: () => string } {
  const held = useRef('');
  return {
    put: (value) => {
      held.current = value;
    },
    take: () => {
      const value = held.current;
      held.current = '';
      return value;
    },
  };
}
