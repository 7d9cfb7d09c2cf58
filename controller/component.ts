// Something main.ts starts after the core (pod source → registry → discovery) and
// stops before it, in reverse order: leader election, the BasisService reconciler,
// the admission webhook. A component with ready() joins /ready.
export interface ControllerComponent {
  readonly name: string;
  start(): Promise<void>;
  stop(): Promise<void>;
  ready?(): boolean;
}
