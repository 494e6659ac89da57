// Deployment settings from CDK context: defaults, parsing, and clear errors for bad values.
import { App, type Duration } from 'aws-cdk-lib';
import { describe, expect, it } from 'vitest';
import { contextFromArgs, parseRate, settingsFromContext } from '../../cdk/settings.ts';

const settings = (context: Record<string, unknown>) => settingsFromContext(new App({ context }).node);
const minutes = (d: Duration) => d.toMinutes();

describe('deployment settings', () => {
  it('default to a stack named Seesaw, one shard, and a balancer and reaper every minute', () => {
    const s = settings({});
    expect(s).toMatchObject({ stackName: 'Seesaw', shards: 1 });
    expect(minutes(s.balancerRate)).toBe(1);
    expect(minutes(s.reaperRate)).toBe(1);
    expect(s.alarmEmail).toBeUndefined();
  });

  it('read the stack name, rates, shard count and alarm address from context (strings, as `-c` gives them)', () => {
    const s = settings({
      'seesaw:stackName': 'Seesaw-prod',
      'seesaw:balancerRate': '5 minutes',
      'seesaw:reaperRate': 'rate(2 minutes)',
      'seesaw:shards': '4',
      'seesaw:alarmEmail': 'ops@example.com',
    });
    expect(s).toMatchObject({ stackName: 'Seesaw-prod', shards: 4, alarmEmail: 'ops@example.com' });
    expect(minutes(s.balancerRate)).toBe(5);
    expect(minutes(s.reaperRate)).toBe(2);
  });

  it.each([
    ['1 minute', 1],
    ['10', 10],
    ['2 hours', 120],
    ['rate(1 day)', 1440],
  ])('parse the rate %j as %i minutes', (text, expected) => {
    expect(minutes(parseRate('seesaw:balancerRate', text))).toBe(expected);
  });

  it.each([['30 seconds'], ['0 minutes'], ['fast'], ['-1 minute'], ['1.5 minutes']])(
    'refuse the rate %j with a message naming the key',
    (text) => {
      expect(() => settings({ 'seesaw:balancerRate': text })).toThrow(/seesaw:balancerRate=.* is invalid/);
    },
  );

  it.each([['0'], ['65'], ['two'], ['1.5']])('refuse the shard count %j', (shards) => {
    expect(() => settings({ 'seesaw:shards': shards })).toThrow(
      /seesaw:shards=.* expected an integer from 1 to 64/,
    );
  });

  it('refuse a stack name CloudFormation would reject, and an address that is not one', () => {
    expect(() => settings({ 'seesaw:stackName': 'my stack' })).toThrow(/seesaw:stackName/);
    expect(() => settings({ 'seesaw:alarmEmail': 'ops' })).toThrow(/seesaw:alarmEmail/);
  });
});

describe('the operator and fleet settings', () => {
  it('default to no fleet (the stack stays as it was), t4g.small hosts, and no invited operator', () => {
    expect(settings({})).toMatchObject({ agents: 0, agentInstanceType: 't4g.small' });
    expect(settings({}).adminEmail).toBeUndefined();
  });

  it('read -c agents=N, -c agentInstanceType and -c adminEmail as the deploy guide spells them', () => {
    expect(
      settings({ agents: '3', agentInstanceType: 'c7g.large', adminEmail: 'me@example.com' }),
    ).toMatchObject({
      agents: 3,
      agentInstanceType: 'c7g.large',
      adminEmail: 'me@example.com',
    });
  });

  it.each([['-1'], ['101'], ['many'], ['2.5']])('refuse the agent count %j', (agents) => {
    expect(() => settings({ agents })).toThrow(/agents=.* expected an integer from 0 to 100/);
  });

  it('refuse an x86 instance type (the hosts boot the arm64 image) and an address that is not one', () => {
    expect(() => settings({ agentInstanceType: 't3.small' })).toThrow(/agentInstanceType/);
    expect(() => settings({ adminEmail: 'me' })).toThrow(/adminEmail=.* expected an email address/);
  });
});

describe('context for `npm run synth`', () => {
  it('starts from cdk.json and lets -c / --context key=value override it', () => {
    const context = contextFromArgs(['-c', 'seesaw:shards=4', '--context', 'seesaw:balancerRate=2 minutes'], {
      'seesaw:shards': 1,
      'seesaw:stackName': 'Seesaw',
    });
    expect(context).toEqual({
      'seesaw:shards': '4',
      'seesaw:stackName': 'Seesaw',
      'seesaw:balancerRate': '2 minutes',
    });
  });

  it('refuses a -c without key=value', () => {
    expect(() => contextFromArgs(['-c', 'seesaw:shards'])).toThrow(/expected -c key=value/);
  });
});
