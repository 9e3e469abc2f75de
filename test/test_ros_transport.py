"""The shipped Fast DDS profile (large shared-memory segments) and how processes pick it up."""
import xml.etree.ElementTree as ET

from dro_depth.ros.transport import FASTDDS_PROFILE, PROFILE_ENV, QOS_FROM_XML_ENV, ensure_fastdds_profile

NS = {'d': 'http://www.eprosima.com'}


def test_profile_is_valid_xml_with_a_large_shm_segment():
    root = ET.parse(FASTDDS_PROFILE).getroot()
    transports = root.findall('.//d:transport_descriptor', NS)
    shm = [t for t in transports if t.find('d:type', NS).text == 'SHM']
    assert len(shm) == 1
    assert int(shm[0].find('d:segment_size', NS).text) >= 16 * 2 ** 20     # tens of 640x480 images
    participant = root.find('.//d:participant', NS)
    assert participant.get('is_default_profile') == 'true'
    used = [e.text for e in participant.findall('.//d:userTransports/d:transport_id', NS)]
    assert shm[0].find('d:transport_id', NS).text in used
    assert any(t.find('d:type', NS).text == 'UDPv4' and t.find('d:transport_id', NS).text in used
               for t in transports), 'UDP must stay available for other hosts'


def test_samples_are_allocated_per_sample_not_kept_at_the_largest_size():
    root = ET.parse(FASTDDS_PROFILE).getroot()
    for kind in ('data_writer', 'data_reader'):
        entity = root.find(f'.//d:{kind}', NS)
        assert entity is not None and entity.get('is_default_profile') == 'true', kind
        assert entity.find('d:historyMemoryPolicy', NS).text == 'DYNAMIC', kind
    writer = root.find('.//d:data_writer', NS)
    # rmw_fastrtps's default since Iron; ASYNCHRONOUS lost the first sample of a reliable burst
    # (test_ros_pairing.py::test_live_pairing_over_ros)
    assert writer.find('.//d:publishMode/d:kind', NS).text == 'SYNCHRONOUS'


def test_profile_is_set_only_when_the_user_has_none():
    env = {}
    assert ensure_fastdds_profile(env) == str(FASTDDS_PROFILE) and env[PROFILE_ENV] == str(FASTDDS_PROFILE)
    assert env[QOS_FROM_XML_ENV] == '1'           # rmw_fastrtps reads the memory policy from the profile
    mine = {PROFILE_ENV: '/etc/my_profile.xml'}
    assert ensure_fastdds_profile(mine) == '/etc/my_profile.xml' and mine[PROFILE_ENV] == '/etc/my_profile.xml'
    assert QOS_FROM_XML_ENV not in mine           # a user's own profile: their settings, untouched
    legacy = {'FASTRTPS_DEFAULT_PROFILES_FILE': '/etc/old.xml'}
    assert ensure_fastdds_profile(legacy) == '/etc/old.xml' and PROFILE_ENV not in legacy
