export * from './header.ts';
export * from './fnv.ts';
export * from './text-form.ts';
export * from './frame.ts';
export * from './frame-reader.ts';
