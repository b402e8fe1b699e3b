/** How a zod failure reads in an error message, the same everywhere. */
import type { z } from 'zod';

type Issue = z.core.$ZodIssue;

/** "path: message", or "unknown field(s): a, b"; `root` names the path when it is empty. */
export function describeIssue(issue: Issue, root = ''): string {
  if (issue.code === 'unrecognized_keys') return `unknown field(s): ${issue.keys.join(', ')}`;
  const path = issue.path.map(String).join('.') || root;
  return path ? `${path}: ${issue.message}` : issue.message;
}

/** The first problem: what a client needs to fix its request. */
export function firstProblem(error: z.ZodError, root = ''): string {
  return describeIssue(error.issues[0], root);
}

/** Every problem, for configuration files that are fixed in one go. */
export function allProblems(error: z.ZodError, root = ''): string {
  return error.issues.map((i) => describeIssue(i, root)).join('; ');
}
