import { describe, expect, it } from 'vitest';
import { luaRecordContent, mirrorTxt, parseMirrorTxt } from './lua-record.js';

const eu1 = { mirrorId: 'eu-1', region: 'eu', address: '192.0.2.1', healthUrl: 'http://192.0.2.1:8080/health/fresh' };
const eu2 = { mirrorId: 'eu-2', region: 'eu', address: '192.0.2.2', healthUrl: 'http://192.0.2.2:8080/health/fresh' };
const us1 = { mirrorId: 'us-1', region: 'us', address: '198.51.100.1', healthUrl: 'https://us-1.example.net/health/fresh' };
const v6 = { mirrorId: 'v6', region: 'us', address: '2001:db8::1', healthUrl: 'http://[2001:db8::1]:8080/health/fresh' };

describe('PowerDNS LUA record content', () => {
  it('prefers the client region by netmask and falls back to the other regions, checking each freshness URL for "fresh"', () => {
    const content = luaRecordContent('A', [eu1, eu2, us1, v6], {
      regionSubnets: { us: ['10.2.0.0/16'], eu: ['10.1.0.0/16', '10.3.0.0/16'] },
    });
    expect(content).toBe(
      `A ";local o={selector='all',stringmatch='fresh',timeout=2} ` +
        `if netmask({'10.1.0.0/16','10.3.0.0/16'}) then return ifurlextup({{['192.0.2.1']='http://192.0.2.1:8080/health/fresh',['192.0.2.2']='http://192.0.2.2:8080/health/fresh'},{['198.51.100.1']='https://us-1.example.net/health/fresh'}},o) end ` +
        `if netmask({'10.2.0.0/16'}) then return ifurlextup({{['198.51.100.1']='https://us-1.example.net/health/fresh'},{['192.0.2.1']='http://192.0.2.1:8080/health/fresh',['192.0.2.2']='http://192.0.2.2:8080/health/fresh'}},o) end ` +
        `return ifurlextup({{['192.0.2.1']='http://192.0.2.1:8080/health/fresh',['192.0.2.2']='http://192.0.2.2:8080/health/fresh',['198.51.100.1']='https://us-1.example.net/health/fresh'}},o)"`,
    );
  });

  it('keeps address families apart and gives no record for a family without mirrors', () => {
    expect(luaRecordContent('AAAA', [eu1, v6], { regionSubnets: {} })).toBe(
      `AAAA ";local o={selector='all',stringmatch='fresh',timeout=2} return ifurlextup({{['2001:db8::1']='http://[2001:db8::1]:8080/health/fresh'}},o)"`,
    );
    expect(luaRecordContent('AAAA', [eu1], { regionSubnets: {} })).toBeUndefined();
  });

  it('refuses values that could break out of the LUA string', () => {
    expect(() => luaRecordContent('A', [{ ...eu1, healthUrl: "http://x/'..os.exit()..'" }], { regionSubnets: {} })).toThrow(
      /not allowed in a LUA record/,
    );
    expect(() => luaRecordContent('A', [eu1], { regionSubnets: { eu: ["10.0.0.0/8'"] } })).toThrow(/subnet/);
  });

  it('round-trips a mirror through its TXT string and rejects spaces or quotes', () => {
    expect(parseMirrorTxt(mirrorTxt(us1))).toEqual(us1);
    expect(parseMirrorTxt('"something else"')).toBeUndefined();
    expect(() => mirrorTxt({ ...eu1, mirrorId: 'a b' })).toThrow(/may not contain/);
  });
});
